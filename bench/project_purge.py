"""Ingest while a deleted project's rows are purged: a project of 1,000,000 events is deleted,
then, in the same run and with the same worker, the ingest benchmark (100,000 mixed items of
another project pushed until committed) runs alone, then while the purge task deletes the
project's rows, then alone again; the median rates are compared (target: with the purge, at
least 80 % of the rate alone), as bench.retention does for the retention prune.

Run with `make bench` (or `python -m bench.project_purge`); prints JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import bench_env, prepare_database
from bench.ingest import COUNT, ingest_once, running_worker
from bench.retention import (
    OLD_EVENTS,
    ROUNDS,
    TARGET_RATIO,
    deleting,
    fill_old_events,
    fresh_items,
    rates,
    remaining,
)


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
    fill = fill_old_events(str(doomed.id), OLD_EVENTS)
    alone, purging = [], []
    with tempfile.TemporaryDirectory() as logdir, running_worker(env, Path(logdir)) as worker:
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
        items = fresh_items()
        task = purge_start(str(doomed.id))
        while len(purging) < ROUNDS and not task.ready():
            run = ingest_once(items, worker)
            if not task.ready():  # only runs the purge overlapped from start to end count
                purging.append(run)
            items = fresh_items()
        purge = task.get(timeout=900)
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
    alone_rate = statistics.median(rates(alone))
    purging_rate = statistics.median(rates(purging)) if purging else 0
    ratio = round(purging_rate / alone_rate, 3)
    result = {
        "benchmark": "project_purge",
        "deleted_project_events": fill,
        "ingest_items_per_run": COUNT,
        "ingest_alone": {"median_events_per_second": round(alone_rate),
                         "runs_events_per_second": rates(alone)},
        "ingest_while_purging": {"median_events_per_second": round(purging_rate),
                                 "runs_events_per_second": rates(purging)},
        "purge": {**purge, "rows_per_second": round(purge["rows"] / purge["seconds"])},
        "rows_left": remaining(str(doomed.id)),
        "ratio_while_purging_to_alone": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio >= TARGET_RATIO,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
