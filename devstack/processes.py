"""The command line of every process of the stack, and starting, waiting for and stopping them.

One definition each: the stack runner, `make print-entrypoints` (and so compose.yaml, which a
test holds to it), the tests and the benchmarks all build their processes from here.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
# The environment's own scripts (daphne, celery) sit beside its Python.
BIN = Path(sys.executable).parent
READY_SECONDS = 60.0
STOP_SECONDS = 20.0


def web_command(*, port: int, bind: str = "0.0.0.0") -> list[str]:
    return ["daphne", "--bind", bind, "--port", str(port), "config.asgi:application"]


def worker_command(
    *, concurrency: int = 4, hostname: str | None = None, embedded_beat: bool = False
) -> list[str]:
    """A Celery worker: thread pool for tasks, queue reader threads beside it, and beat as a
    thread too when ``embedded_beat`` (the single-machine stack; never two such workers)."""
    command = ["celery", "--app", "config", "worker", "--pool", "threads",
               "--concurrency", str(concurrency), "--loglevel", "INFO",
               "--without-gossip", "--without-mingle"]  # fmt: skip
    if hostname is not None:
        command += ["--hostname", hostname]
    if embedded_beat:
        command.append("--embedded-beat")
    return command


def beat_command() -> list[str]:
    return ["celery", "--app", "config", "beat", "--loglevel", "INFO"]


def otlp_grpc_command(*, port: int = 4317, bind: str = "0.0.0.0") -> list[str]:
    """OTLP/gRPC for agent frameworks' traces (docs/turns.md); OTLP/HTTP is served by web."""
    return ["python", "manage.py", "otlp_grpc", "--bind", bind, "--port", str(port)]


def migrate_command() -> list[str]:
    return ["python", "manage.py", "migrate", "--noinput"]


def entrypoints(*, port: int = 8000) -> dict[str, str]:
    """The commands compose.yaml must run, as shell lines."""
    commands = {
        "web": web_command(port=port),
        "worker": worker_command(),
        "beat": beat_command(),
        "otlp": otlp_grpc_command(),
        "migrate": migrate_command(),
    }
    return {name: shlex.join(command) for name, command in commands.items()}


def executable(command: list[str]) -> list[str]:
    """The command with its program taken from this environment when it has one."""
    program = BIN / command[0]
    return [str(program), *command[1:]] if program.exists() else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, *, what: str = "a server", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {timeout}s")


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process with its output in `log`, from the checkout."""
    handle = open(log, "wb")  # noqa: SIM115  (the child owns it until it exits)
    return subprocess.Popen(
        executable(command), cwd=CHECKOUT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def start(command: list[str], env: dict[str, str], log: Path, ready: str | int) -> subprocess.Popen:
    """Start a process and wait until its log shows `ready` (or, for an int, its port answers)."""
    proc = spawn(command, env, log)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited:\n{log.read_text(errors='replace')}")
        if port_answers(ready) if isinstance(ready, int) else ready in _text(log):
            return proc
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{command[0]} not ready after {READY_SECONDS:.0f}s:\n{_text(log)}")


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (Linux /proc), for the benchmarks and the fault suite."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


def stop(proc: subprocess.Popen, timeout: float = STOP_SECONDS) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
