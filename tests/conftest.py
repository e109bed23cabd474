"""Shared fixtures: users alice (owner), bob (member), charlie (outsider); live servers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

from devstack.harness import Stack, environment
from errorsink.projects.models import Membership
from errorsink.projects.services import project_add_member, project_create

CHECKOUT = Path(__file__).resolve().parents[1]
pytest_plugins = ["tests.mailbox"]  # the `mailbox` fixture: a real SMTP server on loopback


@pytest.fixture(autouse=True)
def door_grants_forgotten():
    """The front door's copy of the keys is per process; each test's keys live in its own
    transaction, so every test starts with no copy and loads its own."""
    from errorsink.door.grants import grant_cache

    grant_cache.forget()


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
    database_url = (
        f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    # A dead worker's items come back after its heartbeat expires: 6 s, not 30, in tests.
    # The worker's own Redis database, which tests.settings would otherwise choose again.
    redis_db = urlsplit(settings.REDIS_URL).path.lstrip("/") or "0"
    return environment(database_url=database_url, redis_url=settings.REDIS_URL,
                       settings_module="tests.settings", ERRORSINK_HEARTBEAT_TTL="6",
                       ERRORSINK_REDIS_DB=redis_db)  # fmt: skip


@pytest.fixture(scope="session")
def live_stack(service_env, tmp_path_factory) -> Iterator[Stack]:
    """The suite's one live stack (devstack.harness) on the test database: Daphne for the whole
    session, a worker for the modules that ask for one. Each test has a fresh project, so what
    one stores never shows in another's."""
    stack = Stack(service_env, tmp_path_factory.mktemp("stack"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def live_server_url(live_stack) -> str:
    """Daphne serving the ASGI app (HTTP and websockets) against the test database."""
    return live_stack.web().url


@pytest.fixture(scope="module")
def celery_worker(live_stack) -> Iterator[subprocess.Popen]:
    """The stack's worker, for the tests of a module that ask for it. Not kept for the session:
    a worker left running would take the items other modules' tests push to look at."""
    worker = live_stack.worker(name="test")
    yield worker
    live_stack.stop(worker)


@pytest.fixture
def private_stack(service_env, tmp_path) -> Iterator[Stack]:
    """Processes of a test's own, for tests that kill, stop or reconfigure them."""
    stack = Stack(service_env, tmp_path / "stack")
    yield stack
    stack.stop()


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
