"""The migration to daily partitions (errorsink 0028) on a copy with events: every event kept,
every read unchanged, and how long it takes per million events.

A database of its own is migrated to 0027 (the table as it was), filled by the quality
benchmark's generator (events over 30 days, as ingest writes them), read, migrated to the end,
and read again. The reads are the event table's checksum (every row's text, hashed and summed,
with the count) and what the API and the pages read from it for three projects: the latest
errors, the sessions list, word searches and sample sessions' timelines.

Run with `make bench` (or `python -m bench.partition_migration [--events N]`); prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import bench_env, replace_path
from devstack.processes import CHECKOUT, executable, migrate_command

DATABASE = "errorsink_bench_migration"
EVENTS = 1_000_000
BEFORE = "0027_metric_sketch_bins"
SHARES = (0.05, 0.15)  # two small projects; the big one takes the rest
WORDS = ("timeout", "undefined", "handler")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.partition_migration")
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args(argv)
    env = _environment()
    import django

    django.setup()
    _migrate_before()
    projects = _projects()
    from bench.quality.generate import generate_events

    generated = generate_events(projects, events=args.events)
    before = _reads([project for project, _ in projects])
    started = time.perf_counter()
    _migrate(env, "errorsink")
    seconds = time.perf_counter() - started
    after = _reads([project for project, _ in projects])
    figures = {
        "benchmark": "partition_migration",
        "events": before["events"]["count"],
        "generated_seconds": generated["seconds"],
        "migration_seconds": round(seconds, 1),
        "seconds_per_million_events": round(seconds / max(before["events"]["count"], 1) * 1e6, 1),
        "every_event_kept": before["events"] == after["events"],
        "every_read_unchanged": before == after,
        "partitions": _partition_count(),
    }
    print("\n" + json.dumps(figures, indent=2))
    _database_drop(env)
    return figures


def _environment() -> dict[str, str]:
    env = bench_env()
    server = env["DATABASE_URL"]
    _database_drop(env)
    import psycopg

    with psycopg.connect(replace_path(server, "/postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    env["DATABASE_URL"] = replace_path(server, f"/{DATABASE}")
    os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    return env


def _database_drop(env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(replace_path(env["DATABASE_URL"], "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _migrate_before() -> None:
    """Every app to its end but errorsink, which stops before the partitions."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    call_command("migrate", "errorsink", BEFORE, verbosity=0)
    for label in sorted(MigrationLoader(connection).migrated_apps - {"errorsink"}):
        call_command("migrate", label, verbosity=0)
    from django.db import connection

    connection.close()


def _migrate(env: dict[str, str], *target: str) -> None:
    command = executable([*migrate_command(), *target, "-v", "0"])
    subprocess.run(command, cwd=CHECKOUT, env=env, check=True)


def _projects() -> list[tuple[str, float]]:
    from errorsink.projects.services import project_create

    shares = [*SHARES, 1.0 - sum(SHARES)]
    return [(str(project_create(name=f"migration {n}").id), share)
            for n, share in enumerate(shares)]  # fmt: skip


def _reads(project_ids: list[str]) -> dict:
    """What the event table holds and what is read from it, as plain data to compare."""
    from django.db import connection

    connection.close()  # the table was replaced under this connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(hashtext(e::text)::bigint), 0)::text, "
            "coalesce(max(id), 0) FROM errorsink_event e"
        )
        count, checksum, last_id = cursor.fetchone()
    reads = {"events": {"count": count, "checksum": checksum, "last_id": last_id}}
    for project_id in project_ids:
        reads[project_id] = _project_reads(project_id)
    return reads


def _project_reads(project_id: str) -> dict:
    from errorsink.issues.selectors import errors_page
    from errorsink.search import ErrorSearch, SessionSearch
    from errorsink.sessions import selectors
    from errorsink.sessions.listing import sessions_page

    errors = errors_page(project_id=project_id, search=ErrorSearch.model_validate({}))
    sessions = sessions_page(project_id=project_id, search=SessionSearch.model_validate({}))
    found = {word: [event.pk for event in errors_page(
        project_id=project_id, search=ErrorSearch.model_validate({"q": word})).items]
        for word in WORDS}  # fmt: skip
    timelines = {
        session.session_id: [
            (event.pk, event.occurred_at.isoformat(), event.code)
            for event in selectors.session_events(
                project_id=project_id, session_id=session.session_id
            ).events
        ]  # fmt: skip
        for session in sessions.items[:5]
    }
    return {
        "latest_errors": [(event.pk, event.code, event.message) for event in errors.items],
        "sessions": [session.session_id for session in sessions.items],
        "words": found,
        "timelines": timelines,
    }


def _partition_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'errorsink_event'::regclass"
        )
        return cursor.fetchone()[0]


if __name__ == "__main__":
    figures = main()
    sys.exit(0 if figures["every_read_unchanged"] else 1)
