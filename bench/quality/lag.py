"""Part 2: how far the rollups trail ingest at 1,000 events a second."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import percentile, tables_empty
from bench.cpu import cpu_snapshot, cpu_used, server_pids
from bench.items import mixed_items
from bench.quality.common import (
    LAG_DRAIN_SECONDS,
    LAG_RATE,
    LAG_SAMPLE_SECONDS,
    TICK,
    load_average,
    progress,
)
from devstack.harness import Stack

# ---------------------------------------------------------------------------------------------
# Part 2: how far the rollups trail ingest at 1,000 events a second


def measure_lag(env: dict, logdir: Path, project_id: str, seconds: int) -> dict:
    tables_empty()
    load_before = load_average()
    count = LAG_RATE * seconds
    items = mixed_items(count, project_id, start=datetime.now(UTC) + timedelta(seconds=2),
                        step=timedelta(seconds=1) / LAG_RATE, seed=11)  # fmt: skip
    stack = Stack(env, logdir)
    try:
        worker = stack.worker(name="lag")
        # config.settings keep beat's own "Starting..." (INFO) out of the log: the banner it is.
        beat = stack.beat(ERRORSINK_STATE_DIR=str(logdir / "beat"))
        trees = {**server_pids(), "worker": worker.pid, "beat": beat.pid}
        before = cpu_snapshot(trees)
        samples, pushed = _push_and_sample(items)
        cpu = cpu_used(before, cpu_snapshot(trees), ("postgres", "redis", "worker", "beat"))
    finally:
        stack.stop()
    cores = {name: round(value / pushed["seconds"], 2) for name, value in cpu.items()}
    return _lag_figures(samples, pushed, count, seconds) | {
        "cpu_cores_used": cores,
        "load_average_1m": {"before": load_before, "after": load_average()},
    }


def _push_and_sample(items: list[bytes]) -> tuple[list[tuple], dict]:
    """Push from a thread while this one samples, every LAG_SAMPLE_SECONDS, the newest
    committed event id and the watermark; sampling goes on until the watermark covers every
    event."""
    pushed: dict = {}
    producer = threading.Thread(target=_produce, args=(items, pushed))
    producer.start()
    samples = []
    deadline = None
    while True:
        samples.append(_sample())
        if not producer.is_alive():
            deadline = deadline or time.monotonic() + LAG_DRAIN_SECONDS
            _, newest, watermark = samples[-1]
            if newest >= len(items) and watermark >= newest:
                break
            if time.monotonic() > deadline:
                progress("the rollups did not catch up within the drain time")
                break
        time.sleep(LAG_SAMPLE_SECONDS)
    producer.join()
    return samples, pushed


def _produce(items: list[bytes], pushed: dict) -> None:
    """LPUSH the items at LAG_RATE a second, every TICK whatever is due by then."""
    from errorsink.connections import redis_client
    from errorsink.ingest.queue import queue_name

    client, queue = redis_client(), queue_name()
    started = time.perf_counter()
    sent = 0
    while sent < len(items):
        due = min(len(items), int((time.perf_counter() - started) * LAG_RATE) + 1)
        if due > sent:
            client.lpush(queue, *items[sent:due])
            sent = due
        time.sleep(TICK)
    pushed["seconds"] = time.perf_counter() - started
    pushed["backlog_at_end"] = client.llen(queue)


def _sample() -> tuple[datetime, int, int]:
    """The database's clock, the newest committed event id and the watermark, in one read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT clock_timestamp(), (SELECT coalesce(max(id), 0) FROM errorsink_event), "
            "(SELECT coalesce(max(watermark), 0) FROM errorsink_rollup_state)"
        )
        return cursor.fetchone()


def _lag_figures(samples: list[tuple], pushed: dict, count: int, seconds: int) -> dict:
    """Per newly seen event id: from the first sample that saw it committed (and from its
    received_at) to the first sample whose watermark covered it."""
    from django.db import connection

    covered_after: dict[int, tuple[datetime, datetime]] = {}
    newest_seen = 0
    for index, (seen_at, newest, _) in enumerate(samples):
        if newest <= newest_seen:
            continue
        newest_seen = newest
        cover = next((at for at, _, watermark in samples[index:] if watermark >= newest), None)
        if cover is not None:
            covered_after[newest] = (seen_at, cover)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, received_at FROM errorsink_event WHERE id = ANY(%s)", [list(covered_after)]
        )
        received = dict(cursor.fetchall())
    committed = [(cover - seen).total_seconds() for seen, cover in covered_after.values()]
    from_received = [(covered_after[pk][1] - at).total_seconds() for pk, at in received.items()]
    return {
        "events_per_second": LAG_RATE,
        "seconds": seconds,
        "achieved_events_per_second": round(count / pushed["seconds"]),
        "queue_backlog_at_end_of_push": pushed["backlog_at_end"],
        "events_stored": newest_seen,
        "samples": len(committed),
        "never_covered": newest_seen > max(covered_after, default=0),
        "lag_after_commit_seconds": _spread(committed),
        "lag_after_received_at_seconds": _spread(from_received),
        "design_limit_seconds": 60,
    }


def _spread(values: list[float]) -> dict:
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2),
            "max": round(max(values), 2)}  # fmt: skip
