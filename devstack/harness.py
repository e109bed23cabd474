"""One way to run errorsink's processes on a given PostgreSQL and Redis: `make run`, the tests,
`make bench` and `make faults` all start their web servers, workers and beat through a Stack.

A Stack holds the environment its processes share (the services' URLs, the settings module,
any setting a caller adds), starts each from devstack's command lines with its log in one
folder, waits until it is ready, and stops what it started. Killing and restarting are the
caller's to ask for: the fault suite and a few tests do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import (
    BIN,
    CHECKOUT,
    beat_command,
    free_port,
    start,
    stop,
    web_command,
    worker_command,
)


def environment(
    *, database_url: str, redis_url: str, settings_module: str | None = None, **settings: str
) -> dict[str, str]:
    """This process's environment with the services and settings the stack's processes use."""
    env = dict(os.environ)
    env.pop("ERRORSINK_REDIS_DB", None)  # the Redis URL says which database
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if settings_module is not None:
        # A settings module of the checkout's (the tests'), found from any working folder.
        env.update(DJANGO_SETTINGS_MODULE=settings_module, PYTHONPATH=str(CHECKOUT))
    env.update(settings)
    return env


@dataclass(frozen=True)
class Web:
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    """Web servers, workers and beat sharing one environment; logs under ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        logs.mkdir(parents=True, exist_ok=True)
        self.started: list[subprocess.Popen] = []
        self.ended: set[int] = set()  # pids stopped or killed on purpose
        self.logs_by_pid: dict[int, Path] = {}

    def web(self, *, port: int | None = None, **settings: str) -> Web:
        """Daphne on loopback, ready when its port answers."""
        port = port or free_port()
        command = web_command(port=port, bind="127.0.0.1")
        return Web(self._start(command, f"web-{port}-{time.monotonic_ns()}", port, settings), port)

    def worker(
        self, *, name: str = "worker", concurrency: int = 2, **settings: str
    ) -> subprocess.Popen:
        """A Celery worker with its ingest readers, ready once Celery says so."""
        unique = f"{name}-{time.monotonic_ns()}"
        command = worker_command(concurrency=concurrency, hostname=f"{unique}@%h")
        return self._start(command, unique, "ready.", settings)

    def beat(self, *, ready: str = "maxinterval", **settings: str) -> subprocess.Popen:
        """Celery beat, ready once its banner's last line is out (or ``ready`` is logged)."""
        return self._start(beat_command(), f"beat-{time.monotonic_ns()}", ready, settings)

    def start(self, command: list[str], *, name: str, ready: str | int) -> subprocess.Popen:
        """Any other command of the stack's (a benchmark's variant of the worker, say)."""
        return self._start(command, f"{name}-{time.monotonic_ns()}", ready, {})

    def log_text(self, proc: subprocess.Popen) -> str:
        """What a process the stack started has logged so far."""
        return self.logs_by_pid[proc.pid].read_text(errors="replace")

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost node would: no shutdown code runs."""
        self.ended.add(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def crashed(self) -> int:
        """Processes that exited without being stopped or killed by the caller."""
        return sum(p.poll() is not None and p.pid not in self.ended for p in self.started)

    def stop(self, proc: subprocess.Popen | None = None) -> None:
        """Stop one process (SIGTERM, then SIGKILL), or every one still running."""
        for each in [proc] if proc is not None else list(self.started):
            if each.poll() is None:
                self.ended.add(each.pid)
                stop(each)

    def _start(
        self, command: list[str], name: str, ready: str | int, settings: dict[str, str]
    ) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        proc = start(command, {**self.env, **settings}, log, ready)
        self.started.append(proc)
        self.logs_by_pid[proc.pid] = log
        return proc
