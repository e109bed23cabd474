"""`make run`: migrate, bootstrap a first admin and project, run web + worker + beat together."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from errorsink.models import Project
from errorsink.projects import project_create

STOP_GRACE_SECONDS = 20


class Command(BaseCommand):
    help = "Run Daphne, a Celery worker and Celery beat in the foreground with labelled logs."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--web", required=True, help="command line of the web process")
        parser.add_argument("--worker", required=True, help="command line of the worker")
        parser.add_argument("--beat", required=True, help="command line of beat")

    def handle(self, *args, web: str, worker: str, beat: str, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self._bootstrap()
        children = {
            "web": self._spawn(web),
            "worker": self._spawn(worker),
            "beat": self._spawn(beat),
        }
        pumps = [self._pump(label, proc) for label, proc in children.items()]
        self._wait_until_interrupted(children)
        self._stop(children)
        for pump in pumps:
            pump.join(timeout=2)
        self.stdout.write("errorsink stopped; embedded services stop with the last process.")

    def _bootstrap(self) -> None:
        User = get_user_model()
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            self.stdout.write(self.style.SUCCESS(
                f"Created the first user. Sign in as admin / {password} (shown only this once)."
            ))  # fmt: skip
            if not Project.objects.exists():
                admin = User.objects.get(username="admin")
                project_create(name="My first project", owner=admin)
        else:
            self.stdout.write(
                "Sign in with your account (the first run printed admin's password; "
                "reset it with: .venv/bin/python manage.py changepassword admin)."
            )
        url = f"http://localhost:{settings.PORT}/"
        self.stdout.write(self.style.SUCCESS(f"errorsink is starting at {url}"))
        for project in Project.objects.order_by("created_at"):
            self.stdout.write(f"  project {project.name!r}: {project.id}")
        self.stdout.write(f"  queue: {settings.REDIS_URL} list {settings.ERRORSINK_QUEUE!r}")
        self.stdout.write("Press Ctrl-C to stop everything.")

    def _spawn(self, command: str) -> subprocess.Popen:
        env = dict(os.environ)
        # Children find the services this process already started: no second lookup, same data.
        env["DATABASE_URL"] = settings.DATABASE_URL
        env["REDIS_URL"] = settings.REDIS_URL
        env["PYTHONUNBUFFERED"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        # Own session: Ctrl-C reaches this process only, which then stops children in order.
        return subprocess.Popen(
            shlex.split(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=settings.BASE_DIR,
        )

    def _pump(self, label: str, proc: subprocess.Popen) -> threading.Thread:
        def copy() -> None:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                self.stdout.write(f"{label:<6} | {line}")
                self.stdout.flush()

        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        return thread

    def _wait_until_interrupted(self, children: dict[str, subprocess.Popen]) -> None:
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.is_set():
            for label, proc in children.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{label} exited with code {proc.returncode}; stopping")
                    return
            stopping.wait(0.5)

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        self.stdout.write("Stopping web, worker and beat...")
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
