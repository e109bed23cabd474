"""Part 1: what the rollups cost beside ingest (CPU per 100,000 events)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import tables_empty
from bench.cpu import cpu_snapshot, cpu_used, server_pids
from bench.items import mixed_items
from bench.quality.common import (
    STAGED,
    load_average,
    max_event_id,
    roll_up_everything,
    vacuum_analyze,
)
from devstack.harness import Stack

# ---------------------------------------------------------------------------------------------
# Part 1: what the rollups cost beside ingest


def measure_cost(env: dict, logdir: Path, project_id: str, count: int) -> dict:
    from errorsink.connections import redis_client

    tables_empty()
    load_before = load_average()
    # Recent, as live traffic is: these events also get the rollups' minute rows.
    start = datetime.now(UTC) - timedelta(hours=1)
    items = mixed_items(count, project_id, start=start, step=timedelta(hours=1) / count)
    client = redis_client()
    for offset in range(0, count, 1_000):
        client.lpush(STAGED, *items[offset : offset + 1_000])
    servers = server_pids()
    ingest, ingest_seconds = _ingest_staged(env, logdir, servers)
    if max_event_id() < count:
        raise RuntimeError(f"only {max_event_id()} of {count} items were stored")
    vacuum_seconds = vacuum_analyze(["errorsink_event", "errorsink_session"])
    before = cpu_snapshot(servers)
    started = time.perf_counter()
    runs = roll_up_everything()
    rollup_seconds = time.perf_counter() - started
    rollups = cpu_used(before, cpu_snapshot(servers), ("postgres", "redis", "bench"))
    per_100k = 100_000 / count
    return {
        "events": count,
        "ingest": {"seconds": round(ingest_seconds, 2),
                   "cpu_seconds": ingest,
                   "cpu_seconds_per_100k": round(ingest["total"] * per_100k, 2)},
        "rollups": {"seconds": round(rollup_seconds, 2), "runs": runs,
                    "cpu_seconds": rollups,
                    "cpu_seconds_per_100k": round(rollups["total"] * per_100k, 2)},
        "ratio_rollups_to_ingest_cpu": round(rollups["total"] / ingest["total"], 3),
        "vacuum_analyze_between_seconds": vacuum_seconds,
        "load_average_1m": {"before": load_before, "after": load_average()},
    }  # fmt: skip


def _ingest_staged(env: dict, logdir: Path, servers: dict) -> tuple[dict, float]:
    """Start a worker, then hand it the staged items in one RENAME, so neither the pushing nor
    the worker's start-up is in the figures; CPU until every batch is committed."""
    from errorsink.connections import redis_client
    from errorsink.ingest.queue import processing_prefix, queue_name

    client = redis_client()
    stack = Stack(env, logdir)
    try:
        worker = stack.worker(name="cost")
        before = cpu_snapshot({**servers, "worker": worker.pid})
        started = time.perf_counter()
        client.rename(STAGED, queue_name())
        # A processing list is only cleared after its batch committed.
        while client.llen(queue_name()) or any(client.scan_iter(processing_prefix() + "*")):
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        after = cpu_snapshot({**servers, "worker": worker.pid})
    finally:
        stack.stop()
    return cpu_used(before, after, ("postgres", "redis", "worker")), seconds
