"""Shared set-up for benchmarks: their own database and Redis number, real subprocesses.

Benchmarks never touch dev data: they use the database `errorsink_bench` on the same server
(embedded or DATABASE_URL's) and Redis database 14, both emptied first. Processes are started
with devstack's command lines and helpers, as the stack and the tests start them.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

from devstack import services
from devstack.harness import environment
from devstack.processes import CHECKOUT, executable, migrate_command

BENCH_DB = "errorsink_bench"
BENCH_REDIS_DB = "14"


def replace_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def bench_env() -> dict[str, str]:
    """Environment for the benchmark and its subprocesses (call before django.setup())."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    services.activate()
    create_database(os.environ["DATABASE_URL"], BENCH_DB)
    env = environment(
        database_url=replace_path(os.environ["DATABASE_URL"], f"/{BENCH_DB}"),
        redis_url=replace_path(os.environ["REDIS_URL"], f"/{BENCH_REDIS_DB}"),
    )
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL")})
    return env


def create_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(replace_path(server_url, "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    subprocess.run(executable([*migrate_command(), "-v", "0"]), cwd=CHECKOUT, env=env, check=True)


def prepare_database(env: dict[str, str]) -> None:
    """Migrate the bench database and empty it (events, sessions, rollups and their watermark)
    and the bench Redis database."""
    migrate(env)
    import django

    django.setup()
    from errorsink.ingest.queue import redis_client

    tables_empty()
    redis_client().flushdb()


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (0 to 1) of ``values``, by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def tables_empty() -> None:
    """Empty every table that grows with events (events and their keys, sessions, issues,
    rollups and their watermark, alert signals) between runs; one list, so a new table is
    emptied by every benchmark."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE errorsink_event, errorsink_event_key, errorsink_session, errorsink_issue, "
            "errorsink_issue_hour, "
            "errorsink_issue_session, errorsink_alert_signal, errorsink_figure_sessions, "
            "errorsink_figure_codes, errorsink_figure_metrics, errorsink_figure_version, "
            "errorsink_figure_stretch, errorsink_rollup_state "
            "RESTART IDENTITY"
        )
