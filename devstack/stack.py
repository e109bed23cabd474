"""`make run`: migrate, bootstrap a first admin and project, run web + worker + beat together."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from devstack import processes

STOP_GRACE_SECONDS = 20


def run(*, port: int) -> int:
    """Run the stack in the foreground with labelled logs until Ctrl-C (or a child exits)."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    _bootstrap(port)
    commands = {
        "web": processes.web_command(port=port),
        "worker": processes.worker_command(),
        "beat": processes.beat_command(),
    }
    env = _child_environment(settings.DATABASE_URL, settings.REDIS_URL)
    # Alert notifications link to the dashboard: on this machine, at this port, unless set.
    env.setdefault("ERRORSINK_PUBLIC_URL", f"http://localhost:{port}")
    children = {label: _spawn(command, env) for label, command in commands.items()}
    pumps = [_pump(label, proc) for label, proc in children.items()]
    _wait_until_interrupted(children)
    _stop(children)
    for pump in pumps:
        pump.join(timeout=2)
    print("errorsink stopped; embedded services stop with the last process.", flush=True)
    return 0


def _bootstrap(port: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from errorsink.models import Project
    from errorsink.projects import project_create

    User = get_user_model()
    if not User.objects.exists():
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser("admin", "admin@localhost", password)
        print(f"Created the first user. Sign in as admin / {password} (shown only this once).")
        if not Project.objects.exists():
            project_create(name="My first project", owner=admin)
    else:
        print(
            "Sign in with your account (the first run printed admin's password; "
            "reset it with: .venv/bin/python manage.py changepassword admin)."
        )
    print(f"errorsink is starting at http://localhost:{port}/")
    for project in Project.objects.order_by("created_at"):
        print(f"  project {project.name!r}: {project.id}")
    print(f"  queue: {settings.REDIS_URL} list {settings.ERRORSINK_QUEUE!r}")
    print("Press Ctrl-C to stop everything.", flush=True)


def _child_environment(database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    # Children find the services this process already started: no second lookup, same data.
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{processes.BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Own session: Ctrl-C reaches this process only, which then stops children in order.
    return subprocess.Popen(
        processes.executable(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        cwd=processes.CHECKOUT,
    )


def _pump(label: str, proc: subprocess.Popen) -> threading.Thread:
    def copy() -> None:
        for raw in proc.stdout:
            sys.stdout.write(f"{label:<6} | {raw.decode('utf-8', 'replace').rstrip()}\n")
            sys.stdout.flush()

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _wait_until_interrupted(children: dict[str, subprocess.Popen]) -> None:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.is_set():
        for label, proc in children.items():
            if proc.poll() is not None:
                print(f"{label} exited with code {proc.returncode}; stopping", file=sys.stderr)
                return
        stopping.wait(0.5)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    print("Stopping web, worker and beat...", flush=True)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
