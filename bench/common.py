"""Shared set-up for benchmarks: their own database and Redis number, real subprocesses.

Benchmarks never touch dev data: they use the database `errorsink_bench` on the same server
(embedded or DATABASE_URL's) and Redis database 14, both emptied first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CHECKOUT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_DB = "errorsink_bench"
BENCH_REDIS_DB = "14"


def _replace_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def bench_env() -> dict[str, str]:
    """Environment for the benchmark and its subprocesses (call before django.setup())."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "errorsink.settings")
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        from errorsink import embedded

        database_url = database_url or embedded.database_url()
        redis_url = redis_url or embedded.redis_url()
    _create_database(database_url, BENCH_DB)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_replace_path(database_url, f"/{BENCH_DB}"),
        REDIS_URL=_replace_path(redis_url, f"/{BENCH_REDIS_DB}"),
        DJANGO_SETTINGS_MODULE="errorsink.settings",
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("ERRORSINK_REDIS_DB", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL")})
    return env


def _create_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_replace_path(server_url, "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare_database(env: dict[str, str]) -> None:
    """Migrate the bench database and empty it and the bench Redis database."""
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=CHECKOUT, env=env, check=True)  # fmt: skip
    import django

    django.setup()
    from django.db import connection

    from errorsink.ingest.queue import redis_client

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE errorsink_event, errorsink_session RESTART IDENTITY")
    redis_client().flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path, ready: str | int) -> subprocess.Popen:
    """Start a process and wait until its log shows `ready` (or its port, if an int, answers)."""
    handle = open(log, "wb")  # noqa: SIM115  (the child owns it until it exits)
    proc = subprocess.Popen(args, cwd=CHECKOUT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited:\n{log.read_text(errors='replace')}")
        if isinstance(ready, int):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", ready)) == 0:
                    return proc
        elif ready in log.read_text(errors="replace"):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{args[0]} not ready after 60s:\n{log.read_text(errors='replace')}")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    args = [str(BIN / "celery"), "--app", "errorsink", "worker", "--pool", "threads",
            "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            "--hostname", f"bench-{os.getpid()}@%h"]  # fmt: skip
    proc = start(args, env, log, "ready")
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
