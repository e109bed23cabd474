"""Ingest while a deleted project's rows are purged: a project of 1,000,000 events is deleted,
then, in the same run and with the same worker, the ingest benchmark (100,000 mixed items of
another project pushed until committed) runs alone, then while the purge task deletes the
project's rows, then alone again; the median rates are compared (target: with the purge, at
least 80 % of the rate alone), as bench.retention does for the retention prune.

Run with `make bench` (or `python -m bench.project_purge`); prints JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_env, prepare_database
from bench.ingest import COUNT, ingest_once, running_worker
from bench.retention import (
    ROUNDS,
    TARGET_RATIO,
    fill_old_events,
    fresh_items,
    rate_figures,
    remaining,
)

PURGE_EVENTS = 1_000_000


def deleting(task):
    """The task, once it is deleting events (seen in pg_stat_activity)."""
    from django.db import connection

    deadline = time.monotonic() + 60
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                ["%DELETE FROM errorsink_event%"],
            )
            if cursor.fetchone():
                return task
            time.sleep(0.05)
    raise RuntimeError("the task never started deleting (is the worker running?)")


def ingest_beside(env: dict, start_task, *, timeout: float) -> tuple[list, list, dict]:
    """Ingest alone, then while the task `start_task()` queues runs, then alone again (the table
    grew meanwhile, so the alone runs bracket the overlapped ones). Only runs overlapped with
    the task from start to end count as beside it."""
    alone, beside = [], []
    with tempfile.TemporaryDirectory() as logdir, running_worker(env, Path(logdir)) as worker:
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
        items = fresh_items()
        task = start_task()
        while len(beside) < ROUNDS and not task.ready():
            run = ingest_once(items, worker)
            if not task.ready():
                beside.append(run)
            items = fresh_items()
        outcome = task.get(timeout=timeout)
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
    return alone, beside, outcome


def purge_start(project_id: str):
    """Mark the project deleted as the members page does, and start the purge task."""
    from django.utils import timezone

    from errorsink.projects.models import Project
    from errorsink.tasks import projects_purge

    Project.objects.filter(id=project_id).update(deleted_at=timezone.now())
    return deleting(projects_purge.apply_async())


def main() -> dict:
    env = bench_env()
    prepare_database(env)
    import config.celery  # noqa: F401  (the task goes through the bench's own broker)
    from errorsink.projects.models import Project

    doomed = Project.objects.create(name="deleted project", retention_days=400)
    fill = fill_old_events(str(doomed.id), PURGE_EVENTS)
    alone, purging, purge = ingest_beside(env, lambda: purge_start(str(doomed.id)), timeout=900)
    alone_figures, purging_figures, ratio = rate_figures(alone, purging)
    result = {
        "benchmark": "project_purge",
        "deleted_project_events": fill,
        "ingest_items_per_run": COUNT,
        "ingest_alone": alone_figures,
        "ingest_while_purging": purging_figures,
        "purge": {**purge, "rows_per_second": round(purge["rows"] / purge["seconds"])},
        "rows_left": remaining(str(doomed.id)),
        "ratio_while_purging_to_alone": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio >= TARGET_RATIO,
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
