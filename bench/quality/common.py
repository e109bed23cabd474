"""The quality benchmark's settings, its own database, and what its parts share."""

from __future__ import annotations

import os
import sys
import time

from bench.common import bench_env, migrate, replace_path

DATABASE = "errorsink_bench_quality"
REDIS_DB = "12"
PARTS = ("cost", "lag", "scale")
COST_EVENTS = 100_000
LAG_RATE = 1_000
LAG_SECONDS = 45
LAG_SAMPLE_SECONDS = 0.1
LAG_DRAIN_SECONDS = 120
SCALE_EVENTS = 10_000_000
REQUESTS = 40
WARMUP_REQUESTS = 3
WINDOWS = ("1h", "24h", "7d", "30d")
PAGE_WINDOWS = ("24h", "30d")
BASELINE_EVENTS = 10_000
# Shares of the scale events of the small projects besides the big one and the baseline.
SMALL_SHARES = (0.01, 0.005, 0.002)
EVENTS_PER_SESSION = 20  # on average: 12 to 28
SESSIONS_PER_CHUNK = 20_000
BUILDS = 6  # released at even intervals over the 30 days, each rolled out over 12 hours
ROLLOUT_SECONDS = 12 * 3600
# Sessions with quality trouble: most of their events are warnings (30% of all events).
TROUBLED_PERCENT = 45
STAGED = "bench:quality:staged"
TICK = 0.01


def progress(message: str) -> None:
    print(f"[bench.quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------------------------------
# The database and the tables between parts


def environment() -> dict[str, str]:
    env = bench_env()
    _database_recreate(env["DATABASE_URL"])
    env["DATABASE_URL"] = replace_path(env["DATABASE_URL"], f"/{DATABASE}")
    env["REDIS_URL"] = replace_path(env["REDIS_URL"], f"/{REDIS_DB}")
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL")})
    migrate(env)
    import django

    django.setup()
    from errorsink.connections import redis_client

    redis_client().flushdb()
    return env


def _database_recreate(server_url: str) -> None:
    database_drop(server_url)
    import psycopg

    with psycopg.connect(replace_path(server_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def database_drop(server_url: str) -> None:
    import psycopg

    with psycopg.connect(replace_path(server_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def vacuum_analyze(tables: list[str]) -> float:
    """What autovacuum would do after a bulk load, done now so it does not land in a
    measurement; returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
    return round(time.perf_counter() - started, 1)


def max_event_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM errorsink_event")
        return cursor.fetchone()[0]


def roll_up_everything() -> int:
    """Runs of rollups_update until the watermark covers every stored event; returns the runs."""
    from errorsink.quality.rollups import rollups_update, rollups_watermark

    target, runs = max_event_id(), 0
    while rollups_watermark() < target:
        rollups_update()
        runs += 1
        if runs > 10_000:
            raise RuntimeError("the rollups do not reach the last event")
    return runs
