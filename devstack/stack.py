"""`make run`: migrate, bootstrap a first admin and project, run web and worker (with beat)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from devstack import processes, services
from devstack.harness import environment

STOP_GRACE_SECONDS = 20


def run(*, port: int, embedded: bool = False) -> int:
    """Run the stack in the foreground with labelled logs until Ctrl-C; a process that dies is
    restarted with back-off while the others keep running, and so is a dead embedded server."""
    # Migrate and bootstrap in a child: this process then never loads Django, and supervising
    # costs 20 MB rather than the 110 MB of a Django process that would sit idle.
    subprocess.run([sys.executable, "-m", "devstack", "bootstrap", "--port", str(port)],
                   check=True, cwd=processes.CHECKOUT)  # fmt: skip
    # Beat runs as a thread of the one worker: on one machine a process of its own costs
    # 130 MB to send a few tiny tasks (compose.yaml keeps it separate, for more workers).
    commands = stack_commands(port=port)
    # The environment every stack's processes get (devstack.harness), here with labelled logs,
    # restarts and the embedded services watched: the foreground supervisor of `make run`.
    chosen_db = {k: v for k, v in os.environ.items() if k == "ERRORSINK_REDIS_DB"}
    env = environment(database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"],
                      **chosen_db)  # fmt: skip
    # Alert notifications link to the dashboard: on this machine, at this port, unless set.
    env.setdefault("ERRORSINK_PUBLIC_URL", f"http://localhost:{port}")
    services.remember_public_url(env["ERRORSINK_PUBLIC_URL"])
    children = {label: _Child(label, command, env) for label, command in commands.items()}
    _supervise_until_interrupted(children, embedded)
    _stop(children)
    print("errorsink stopped; embedded services stop with the last process.", flush=True)
    return 0


def listen_address() -> str:
    return os.environ.get("ERRORSINK_BIND", "127.0.0.1")


def stack_commands(*, port: int, bind: str | None = None) -> dict[str, list[str]]:
    """Web, worker (with beat) and the OTLP/gRPC receiver. Web and OTLP listen on this
    machine only unless ``bind`` says otherwise (ERRORSINK_BIND=0.0.0.0 to let other machines
    in); compose binds all addresses inside its containers. OTLP/gRPC's port is
    ERRORSINK_OTLP_GRPC_PORT (4317, the protocol's own, unless set)."""
    address = bind or listen_address()
    otlp_port = int(os.environ.get("ERRORSINK_OTLP_GRPC_PORT", "4317"))
    return {
        "web": processes.web_command(port=port, bind=address),
        "worker": processes.worker_command(embedded_beat=True),
        "otlp": processes.otlp_grpc_command(port=otlp_port, bind=address),
    }


RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
HEALTHY_AFTER = 60.0  # a process up this long is well again: its next restart is immediate


class _Child:
    """One process of the stack, restarted with doubling back-off when it dies."""

    def __init__(self, label: str, command: list[str], env: dict[str, str]) -> None:
        self.label, self.command, self.env = label, command, env
        self.delay = RESTART_FIRST_DELAY
        self.restart_at: float | None = None
        self.start()

    def start(self) -> None:
        self.proc = _spawn(self.command, self.env)
        self.started = time.monotonic()
        self.pump = _pump(self.label, self.proc)

    def check(self) -> None:
        """Called every half second: notice a death, and restart when its delay is over."""
        now = time.monotonic()
        if self.restart_at is None and self.proc.poll() is not None:
            if now - self.started >= HEALTHY_AFTER:
                self.delay = RESTART_FIRST_DELAY
            self.restart_at = now + self.delay
            code = self.proc.returncode
            print(f"{self.label} exited with code {code}; restarting in {self.delay:g} s "
                  "(the others keep running)", file=sys.stderr, flush=True)  # fmt: skip
            self.delay = min(self.delay * 2, RESTART_MAX_DELAY)
        if self.restart_at is not None and now >= self.restart_at:
            self.restart_at = None
            self.start()


def bootstrap(port: int) -> None:
    """Migrate, then a first admin and project on an empty database; print where to go."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    _bootstrap(port)


def _bootstrap(port: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from errorsink.projects.models import Project
    from errorsink.projects.services import project_create

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
    bind = listen_address()
    reach = "this machine only; ERRORSINK_BIND=0.0.0.0 lets others in" if bind in (
        "127.0.0.1", "localhost", "::1") else f"every address of {bind}"  # fmt: skip
    print(f"errorsink is starting at http://localhost:{port}/ (listening on {bind}: {reach})")
    for project in Project.objects.order_by("created_at"):
        print(f"  project {project.name!r}: {project.id}")
    print(f"  queue: {settings.REDIS_URL} list {settings.ERRORSINK_QUEUE!r}")
    print("Press Ctrl-C to stop everything.", flush=True)


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


SERVICES_CHECK_SECONDS = 2.0


def _supervise_until_interrupted(children: dict[str, _Child], embedded: bool) -> None:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    services_checked = time.monotonic()
    while not stopping.is_set():
        for child in children.values():
            child.check()
        if embedded and time.monotonic() - services_checked >= SERVICES_CHECK_SECONDS:
            services_checked = time.monotonic()
            services.services_revive(keep={child.proc.pid for child in children.values()})
        stopping.wait(0.5)


def _stop(children: dict[str, _Child]) -> None:
    print("Stopping web and worker...", flush=True)
    procs = [child.proc for child in children.values()]
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
