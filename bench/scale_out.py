"""Ingest with one worker process and with two, on the same Redis and PostgreSQL, as compose
replicas run them: events/s for each, alternated over ROUNDS rounds, and their ratio.

Each worker runs ERRORSINK_QUEUE_READERS queue reader threads; a second process adds its own
interpreter (its own GIL), which is what a second machine would add. On a machine whose cores
PostgreSQL also needs, the ratio says how much of that is left.

Run with `make bench` (or `python -m bench.scale_out`); prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_env, prepare_database, tables_empty
from bench.items import mixed_items
from devstack.harness import Stack

COUNT = int(os.environ.get("BENCH_SCALE_ITEMS", "60000"))
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "3"))


def _ingest(items: list[bytes], env: dict, logdir: Path, workers: int) -> dict:
    from errorsink.ingest.queue import processing_prefix, queue_name, redis_client

    tables_empty()
    stack = Stack(env, logdir)
    try:
        for n in range(workers):
            stack.worker(name=f"scale-{n}")
        client = redis_client()
        started = time.perf_counter()
        for offset in range(0, len(items), 1000):
            client.lpush(queue_name(), *items[offset : offset + 1000])
        while client.llen(queue_name()) or any(client.scan_iter(processing_prefix() + "*")):
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        stack.stop()
    return {"workers": workers, "seconds": round(elapsed, 2),
            "events_per_second": round(len(items) / elapsed)}  # fmt: skip


def main() -> dict:
    env = bench_env()
    prepare_database(env)
    from errorsink.projects.models import Project
    from errorsink.sessions.models import Event

    project = Project.objects.create(name="bench scale-out")
    items = mixed_items(COUNT, str(project.id))
    rounds = []
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(ROUNDS):
            one = _ingest(items, env, Path(logdir), 1)
            assert Event.objects.filter(project=project).count() == COUNT
            two = _ingest(items, env, Path(logdir), 2)
            assert Event.objects.filter(project=project).count() == COUNT
            rounds.append({"one": one, "two": two,
                           "ratio": round(two["events_per_second"] / one["events_per_second"],
                                          2)})  # fmt: skip
    result = {
        "benchmark": "scale_out",
        "items": COUNT,
        "rounds": rounds,
        "one_worker_events_per_second_median": statistics.median(
            r["one"]["events_per_second"] for r in rounds),
        "two_workers_events_per_second_median": statistics.median(
            r["two"]["events_per_second"] for r in rounds),
        "two_to_one_ratio_median": statistics.median(r["ratio"] for r in rounds),
        "cpus": os.cpu_count(),
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
