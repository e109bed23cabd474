"""Ingest throughput: 100,000 mixed items pushed onto the queue until committed, against a raw
COPY of the same normalised rows into the same table, measured in the same run.

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
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_env, prepare_database, start_worker
from bench.items import mixed_items
from devstack.processes import start, stop, worker_command

COUNT = 100_000
PUSH_CHUNK = 1_000


def _count_events(cursor, *, after: int = 0) -> int:
    cursor.execute("SELECT count(*) FROM errorsink_event WHERE id > %s", [after])
    return cursor.fetchone()[0]


def _last_id(cursor) -> int:
    cursor.execute("SELECT coalesce(max(id), 0) FROM errorsink_event")
    return cursor.fetchone()[0]


# The indexes issues added to the event table: gone while grouping is off, as before issues.
GROUPING_INDEXES = ("event_issue_newest", "event_message_search", "event_fingerprint_missing")
# Five rounds, the median reported: one round on this machine swings by 10 % either way.
ROUNDS = 5


@contextmanager
def running_worker(
    env: dict[str, str], logdir: Path, *, grouping: bool = True
) -> Iterator[subprocess.Popen]:
    if grouping:
        worker = start_worker(env, logdir / "worker.log")
    else:
        command = worker_command(concurrency=2, hostname=f"bench-off-{os.getpid()}@%h")
        command = [sys.executable, "-m", "bench.worker_without_grouping", *command[1:]]
        worker = start(command, env, logdir / "worker-off.log", ready="ready")
    try:
        yield worker
    finally:
        stop(worker)


def measure_end_to_end(
    items: list[bytes], env: dict[str, str], logdir: Path, *, grouping: bool = True
) -> dict:
    _tables_empty()
    with _grouping_indexes(present=grouping), running_worker(env, logdir, grouping=grouping) as w:
        return ingest_once(items, w)


def _tables_empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE errorsink_event, errorsink_session, errorsink_issue, errorsink_issue_hour, "
            "errorsink_issue_session, errorsink_alert_signal RESTART IDENTITY"
        )


@contextmanager
def _grouping_indexes(*, present: bool) -> Iterator[None]:
    """Without grouping, the event table as it was before issues: their indexes dropped, then
    made again (on an empty table: instantly) for the next measurement."""
    from django.db import connection

    from errorsink.models import Event

    if present:
        yield
        return
    indexes = [index for index in Event._meta.indexes if index.name in GROUPING_INDEXES]
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.remove_index(Event, index)
    try:
        yield
    finally:
        _tables_empty()
        with connection.schema_editor() as editor:
            for index in indexes:
                editor.add_index(Event, index)


def ingest_once(items: list[bytes], worker: subprocess.Popen) -> dict:
    """Push ``items`` to a running worker and wait until every one is committed."""
    from django.db import connection

    from errorsink.ingest.queue import processing_prefix, queue_name, redis_client

    with connection.cursor() as cursor:
        before = _last_id(cursor)
    client = redis_client()
    started = time.perf_counter()
    for offset in range(0, len(items), PUSH_CHUNK):
        client.lpush(queue_name(), *items[offset : offset + PUSH_CHUNK])
    pushed = time.perf_counter() - started
    cpu_before = _cpu_seconds(worker.pid)
    # Done when the queue and every processing list are empty: a processing list is only
    # cleared after its batch committed. Polling Redis costs nothing; polling count(*) on a
    # growing table would eat the CPU the run is measuring.
    while client.llen(queue_name()) or any(client.scan_iter(processing_prefix() + "*")):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker_cpu = _cpu_seconds(worker.pid) - cpu_before
    with connection.cursor() as cursor:
        while _count_events(cursor, after=before) < len(items):  # a check: every item is stored
            time.sleep(0.05)
    # CPU seconds the worker used per second of the run: near 1.0 means the worker's Python
    # (one core, the GIL) is the bottleneck; well below, it waits on PostgreSQL or Redis.
    return {"seconds": round(elapsed, 3), "push_seconds": round(pushed, 3),
            "events_per_second": round(len(items) / elapsed),
            "worker_cpu_per_second": round(worker_cpu / elapsed, 2)}  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_raw_copy(items: list[bytes], *, grouping: bool = True) -> dict:
    """The same rows, already normalised, COPYed straight into the event table: as the worker
    with grouping on or off writes them (with a fingerprint or without), into the table as that
    worker has it (with grouping's indexes or without them)."""
    from django.db import connection, transaction

    from errorsink.ingest.batch import batch_rows
    from errorsink.ingest.persist import _COLUMNS

    width = len(_COLUMNS)
    rows = [row[1:width] for row in batch_rows(items, received_at=datetime.now(UTC)).rows]
    if not grouping:
        rows = [(*row[:-1], None) for row in rows]  # the fingerprint is the last column
    columns = ", ".join(_COLUMNS[1:])
    with _grouping_indexes(present=grouping):
        _tables_empty()
        started = time.perf_counter()
        copy_sql = f"COPY errorsink_event ({columns}) FROM STDIN"
        with transaction.atomic(), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "rows_per_second": round(len(rows) / elapsed)}


def _round(on: dict, copy_on: dict, off: dict, copy_off: dict) -> dict:
    ratio_on = round(on["events_per_second"] / copy_on["rows_per_second"], 3)
    ratio_off = round(off["events_per_second"] / copy_off["rows_per_second"], 3)
    return {"grouping_on": on, "raw_copy_on": copy_on, "ratio_on": ratio_on,
            "grouping_off": off, "raw_copy_off": copy_off, "ratio_off": ratio_off,
            "ratio_on_to_off": round(ratio_on / ratio_off, 3)}  # fmt: skip


def _median_of(rounds: list[dict], on: str, off: str, figure: str) -> float:
    return round(statistics.median(r[on][figure] / r[off][figure] for r in rounds), 3)


def main() -> dict:
    env = bench_env()
    prepare_database(env)
    from errorsink.models import Project

    project = Project.objects.create(name="bench")
    items = mixed_items(COUNT, str(project.id))
    rounds = []
    with tempfile.TemporaryDirectory() as logdir:
        # Alternated, each beside its own COPY baseline: the machine's noise shows in the rounds.
        for _ in range(ROUNDS):
            on = measure_end_to_end(items, env, Path(logdir), grouping=True)
            copy_on = measure_raw_copy(items)
            off = measure_end_to_end(items, env, Path(logdir), grouping=False)
            copy_off = measure_raw_copy(items, grouping=False)
            rounds.append(_round(on, copy_on, off, copy_off))
    last = rounds[-1]
    result = {
        "benchmark": "ingest",
        "items": COUNT,
        "end_to_end": last["grouping_on"],
        "raw_copy": last["raw_copy_on"],
        "ratio_end_to_end_to_raw_copy": last["ratio_on"],
        "grouping": {
            "rounds": rounds,
            "ratio_on_to_off": [r["ratio_on_to_off"] for r in rounds],
            "median_ratio_on_to_off": statistics.median(r["ratio_on_to_off"] for r in rounds),
            "median_events_per_second_on_to_off": _median_of(rounds, "grouping_on",
                                                             "grouping_off", "events_per_second"),
            # What grouping's indexes cost a raw COPY: the ratio above discounts it.
            "median_raw_copy_on_to_off": _median_of(rounds, "raw_copy_on", "raw_copy_off",
                                                    "rows_per_second"),
        },
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
