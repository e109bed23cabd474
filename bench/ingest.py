"""Ingest throughput: 100,000 mixed items pushed onto the queue until committed, against a raw
COPY of the same normalised rows into the same table, measured in the same run.

Four set-ups, alternated in each round: the product as it is, with one worker process (as
`make run` starts it) and with two (as compose.yaml deploys it); grouping off (no fingerprints,
no issue counters, no issue index); and before triage (grouping off and no text search index
either). Their ratios tell what grouping costs ingest, what the search index costs, and both.

Run with `make bench` (or `python -m bench.ingest`); prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_env, prepare_database, tables_empty
from bench.cpu import process_cpu_seconds, program_cpu_seconds
from bench.items import mixed_items
from devstack.harness import Stack
from devstack.processes import worker_command

COUNT = 100_000
PUSH_CHUNK = 1_000


def _count_events(cursor, *, after: int = 0) -> int:
    cursor.execute("SELECT count(*) FROM errorsink_event WHERE id > %s", [after])
    return cursor.fetchone()[0]


def _last_id(cursor) -> int:
    cursor.execute("SELECT coalesce(max(id), 0) FROM errorsink_event")
    return cursor.fetchone()[0]


# The indexes grouping added to the event table: gone while grouping is off, as before issues.
ISSUE_INDEXES = ("event_issue_newest", "event_fingerprint_missing")
# The words index of text search (errorsink/search.py): a filter of the triage view, not part of
# grouping, so kept while grouping is off; its own cost is measured by dropping it too.
SEARCH_INDEXES = ("event_message_search",)
# Eight rounds, the medians reported: one round on this machine swings by 10 to 20 % either way.
# Each set-up goes first, second, third and fourth in two rounds each, so no set-up always
# follows the same one (and the truncation, index rebuilds and autovacuum that follow it).
ROUNDS = 8


@dataclass(frozen=True)
class Setup:
    """One measured configuration: whether the worker groups errors into issues, and which
    indexes the event table goes without."""

    name: str
    grouping: bool
    dropped: tuple[str, ...]
    workers: int = 1


SETUPS = (
    Setup("grouping_on", grouping=True, dropped=()),
    # compose.yaml's two worker processes: on 2 cores the worker's Python (one core, the GIL)
    # bounds ingest, and a second process gives it the other core beside PostgreSQL.
    Setup("two_workers", grouping=True, dropped=(), workers=2),
    Setup("grouping_off", grouping=False, dropped=ISSUE_INDEXES),
    Setup("before_triage", grouping=False, dropped=ISSUE_INDEXES + SEARCH_INDEXES),
)


@contextmanager
def running_worker(
    env: dict[str, str], logdir: Path, *, grouping: bool = True
) -> Iterator[subprocess.Popen]:
    with running_workers(env, logdir, grouping=grouping) as [worker]:
        yield worker


@contextmanager
def running_workers(
    env: dict[str, str], logdir: Path, *, grouping: bool = True, count: int = 1
) -> Iterator[list[subprocess.Popen]]:
    stack = Stack(env, logdir)
    try:
        yield [_worker_started(stack, grouping, n) for n in range(count)]
    finally:
        stack.stop()


def _worker_started(stack: Stack, grouping: bool, n: int) -> subprocess.Popen:
    if grouping:
        return stack.worker(name=f"bench{n}")
    command = worker_command(concurrency=2, hostname=f"bench-off-{n}-{os.getpid()}@%h")
    command = [sys.executable, "-m", "bench.worker_without_grouping", *command[1:]]
    return stack.start(command, name="worker-off", ready="ready")


def measure_end_to_end(items: list[bytes], env: dict[str, str], logdir: Path, setup: Setup) -> dict:
    tables_empty()
    with (
        _indexes_dropped(setup.dropped),
        running_workers(env, logdir, grouping=setup.grouping, count=setup.workers) as workers,
    ):
        return ingest_once(items, workers)


@contextmanager
def _indexes_dropped(names: tuple[str, ...]) -> Iterator[None]:
    """The event table without the named indexes, as it was before they were added; made again
    afterwards (on an empty table: instantly) for the next measurement."""
    from django.db import connection

    from errorsink.sessions.models import Event

    indexes = [index for index in Event._meta.indexes if index.name in names]
    if not indexes:
        yield
        return
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.remove_index(Event, index)
    try:
        yield
    finally:
        tables_empty()
        with connection.schema_editor() as editor:
            for index in indexes:
                editor.add_index(Event, index)


def ingest_once(items: list[bytes], worker: subprocess.Popen | list[subprocess.Popen]) -> dict:
    """Push ``items`` to running workers and wait until every one is committed."""
    workers = worker if isinstance(worker, list) else [worker]
    from django.db import connection

    from errorsink.ingest.queue import processing_prefix, queue_name, redis_client

    with connection.cursor() as cursor:
        before = _last_id(cursor)
    client = redis_client()
    cpu_before = _workers_cpu(workers), program_cpu_seconds("postgres")
    started = time.perf_counter()
    for offset in range(0, len(items), PUSH_CHUNK):
        client.lpush(queue_name(), *items[offset : offset + PUSH_CHUNK])
    pushed = time.perf_counter() - started
    # Done when the queue and every processing list are empty: a processing list is only
    # cleared after its batch committed. Polling Redis costs nothing; polling count(*) on a
    # growing table would eat the CPU the run is measuring.
    while client.llen(queue_name()) or any(client.scan_iter(processing_prefix() + "*")):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker_cpu = _workers_cpu(workers) - cpu_before[0]
    postgres_cpu = program_cpu_seconds("postgres") - cpu_before[1]
    with connection.cursor() as cursor:
        while _count_events(cursor, after=before) < len(items):  # a check: every item is stored
            time.sleep(0.05)
    # CPU seconds the workers used per second of the run: near 1.0 a worker means its Python
    # (one core, the GIL) is the bottleneck; well below, it waits on PostgreSQL or Redis.
    # CPU seconds of the worker and of PostgreSQL together: what the run cost the machine,
    # which other load on it changes far less than the wall-clock figures.
    return {"seconds": round(elapsed, 3), "push_seconds": round(pushed, 3),
            "events_per_second": round(len(items) / elapsed),
            "worker_cpu_per_second": round(worker_cpu / elapsed, 2),
            "cpu_seconds": round(worker_cpu + postgres_cpu, 2)}  # fmt: skip


def _workers_cpu(workers: list[subprocess.Popen]) -> float:
    return sum(process_cpu_seconds(worker.pid) for worker in workers)


def measure_raw_copy(items: list[bytes], setup: Setup = SETUPS[0]) -> dict:
    """The same rows, already normalised, COPYed straight into the event table: as the set-up's
    worker writes them (with a fingerprint or without), into the table as it has it."""
    from django.db import connection, transaction

    from errorsink.ingest.batch import batch_rows
    from errorsink.ingest.rows import COLUMN_NAMES

    rows = [row[1:-1] for row in batch_rows(items, received_at=datetime.now(UTC)).rows]
    if not setup.grouping:
        rows = [(*row[:-1], None) for row in rows]  # the fingerprint is the last column
    columns = ", ".join(COLUMN_NAMES)
    with _indexes_dropped(setup.dropped):
        tables_empty()
        started = time.perf_counter()
        copy_sql = f"COPY errorsink_event ({columns}) FROM STDIN"
        with transaction.atomic(), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "rows_per_second": round(len(rows) / elapsed)}


def measure_round(items: list[bytes], env: dict[str, str], logdir: Path, *, first: int = 0) -> dict:
    """Each set-up end to end, beside a raw COPY into the table as that set-up has it, starting
    with the ``first``-th."""
    measured = {}
    for setup in SETUPS[first:] + SETUPS[:first]:
        end_to_end = measure_end_to_end(items, env, logdir, setup)
        raw_copy = measure_raw_copy(items, setup)
        ratio = end_to_end["events_per_second"] / raw_copy["rows_per_second"]
        measured[setup.name] = {"end_to_end": end_to_end, "raw_copy": raw_copy,
                                "ratio_to_raw_copy": round(ratio, 3)}  # fmt: skip
    return measured


def compared(rounds: list[dict], with_it: str, without_it: str) -> dict:
    """What one set-up costs against another: medians over the rounds of each figure's ratio
    (1.0 costs nothing; 0.9 is 10 % slower)."""

    def ratios(figure) -> list[float]:
        return [round(figure(r[with_it]) / figure(r[without_it]), 3) for r in rounds]

    events = ratios(lambda m: m["end_to_end"]["events_per_second"])
    # The same items each time, so events per CPU second is the inverse of the CPU they cost.
    per_cpu = ratios(lambda m: 1 / m["end_to_end"]["cpu_seconds"])
    return {"events_per_second": {"median": statistics.median(events), "rounds": events},
            "events_per_cpu_second": {"median": statistics.median(per_cpu), "rounds": per_cpu},
            "ratio_to_raw_copy": {"median": statistics.median(ratios(
                lambda m: m["ratio_to_raw_copy"]))},
            "raw_copy": {"median": statistics.median(ratios(
                lambda m: m["raw_copy"]["rows_per_second"]))}}  # fmt: skip


def medians(rounds: list[dict], name: str) -> dict:
    """One set-up's figures, the median of each over the rounds."""

    def median(figure) -> float:
        return statistics.median(figure(r[name]) for r in rounds)

    return {"events_per_second": median(lambda m: m["end_to_end"]["events_per_second"]),
            "events_per_cpu_second": round(median(
                lambda m: COUNT / m["end_to_end"]["cpu_seconds"])),
            "raw_copy_rows_per_second": median(lambda m: m["raw_copy"]["rows_per_second"]),
            "ratio_to_raw_copy": median(lambda m: m["ratio_to_raw_copy"])}  # fmt: skip


def main() -> dict:
    env = bench_env()
    prepare_database(env)
    from errorsink.projects.models import Project

    project = Project.objects.create(name="bench")
    items = mixed_items(COUNT, str(project.id))
    with tempfile.TemporaryDirectory() as logdir:
        # Set-ups alternated within each round: the machine's drift shows in the rounds.
        rounds = [measure_round(items, env, Path(logdir), first=n % len(SETUPS))
                  for n in range(ROUNDS)]  # fmt: skip
    result = {
        "benchmark": "ingest",
        "items": COUNT,
        # Per set-up, the medians over the rounds; each ratio is to the raw COPY of its round.
        "setups": {setup.name: medians(rounds, setup.name) for setup in SETUPS},
        # Issues: fingerprints, counters and the issue index, text search's index in both.
        "grouping_on_to_off": compared(rounds, "grouping_on", "grouping_off"),
        # Text search's words index alone, neither set-up grouping.
        "search_index_to_none": compared(rounds, "grouping_off", "before_triage"),
        # The two together: what the triage issue added to ingest.
        "triage_to_before": compared(rounds, "grouping_on", "before_triage"),
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
