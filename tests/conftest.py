"""Shared fixtures: users alice (owner), bob (member), charlie (outsider); live servers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from devstack.processes import BIN, free_port, start, stop, web_command, worker_command
from errorsink.projects.models import Membership
from errorsink.projects.services import project_add_member, project_create

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", password="charlie-password")


@pytest.fixture
def project(alice, bob):
    project = project_create(name="Voice bot", owner=alice)
    project_add_member(project=project, user=bob, role=Membership.MEMBER)
    return project


@pytest.fixture(scope="session")
def service_env(django_db_setup, django_db_blocker) -> dict[str, str]:
    """Environment for subprocesses (Daphne, Celery) that must see the test database."""
    with django_db_blocker.unblock():
        db = connection.settings_dict
    env = dict(os.environ)
    env.pop("ERRORSINK_REDIS_DB", None)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(CHECKOUT),
        DATABASE_URL=f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="session")
def live_server_url(service_env, tmp_path_factory) -> Iterator[str]:
    """Daphne serving the ASGI app (HTTP and websockets) against the test database."""
    port = free_port()
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    proc = start(web_command(port=port, bind="127.0.0.1"), service_env, log, ready=port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


class WorkerProcess:
    """A real Celery worker process on the Redis broker (runs the ingest consumer too)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.proc = env, log, None

    def start(self) -> None:
        command = worker_command(concurrency=2, hostname=f"test-{time.monotonic_ns()}@%h")
        self.proc = start(command, self.env, self.log, ready="ready.")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def celery_worker(service_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    """One worker for the tests of a module that ask for it: starting and stopping one costs
    seconds. Each test has a fresh project, so what one stores never shows in another's. A
    test that kills a worker starts its own (WorkerProcess)."""
    worker = WorkerProcess(service_env, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        message = "browser tests need Debian's chromium at /usr/bin/chromium (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, and Django then
    # refuses ORM calls (test data, the flush between tests) as if they were async code.
    # Nothing here runs concurrently with that loop, so the guard is lifted meanwhile.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


SCREENSHOTS = os.environ.get("ERRORSINK_SCREENSHOTS")


def screenshot(page, name: str) -> None:
    """With ERRORSINK_SCREENSHOTS set to a folder, keep a picture of each checked state."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
