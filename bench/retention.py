"""Ingest while the retention prune runs: 1,000,000 events past their project's retention are
inserted (generate_series, in PostgreSQL), then, in the same run and with the same worker, the
ingest benchmark (100,000 mixed items pushed until committed) runs alone, then while the prune
task deletes the old events, then alone again; the median rates are compared (target: with the
prune, at least 80% of the rate alone).

The prune is sent to the worker as beat sends it and runs in its task pool, in the same
process as the queue reader threads, on its own database connection. Only ingest runs that
the prune overlapped from start to end count as "while pruning"; the runs alone before and
after bracket them, since the table grows by each run.

Run with `make bench` (or `python -m bench.retention`); prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_env, prepare_database
from bench.ingest import COUNT, ingest_once, running_worker
from bench.items import mixed_items

OLD_EVENTS = int(os.environ.get("BENCH_RETENTION_OLD_EVENTS", "1000000"))
OLD_SESSIONS = 20_000
# Ingest runs alone before the prune, while it runs, and alone after it.
ROUNDS = 4
TARGET_RATIO = 0.8

# Past a 30-day retention (31 to about 77 days old), in time order as ingest would have stored
# them, in the kinds of the ingest mix.
_FILL = """
INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
    occurred_at, received_at, source, severity, recoverable, build_id, stack, details,
    item_type, raw)
SELECT %(project)s, 'old-' || n, 'old-' || (n %% %(sessions)s),
       (ARRAY['error', 'warning', 'warning', 'termination', 'info'])[1 + n %% 5],
       (ARRAY['AGENT_CHILD_CRASHED', '31002', '31001', 'USER_BUSY', 'SESSION_IDLE_TIMEOUT'])
           [1 + n %% 5],
       '', 'old event ' || n, t, t, 'client', 'medium', NULL, 'build-1', '', '{}'::jsonb,
       'session_warning', '{"type": "session_warning"}'::json
FROM generate_series(1, %(count)s) AS n,
     LATERAL (SELECT now() - interval '77 days' + n * interval '4 seconds') AS x(t)
"""

_SESSIONS = """
INSERT INTO errorsink_session (project_id, session_id, build_id, first_seen, last_seen,
    error_count, warning_count, event_count, end_cause)
SELECT %(project)s, 'old-' || s, 'build-1', now() - interval '77 days',
       now() - interval '31 days', 10, 20, 50, 'USER_BUSY'
FROM generate_series(0, %(sessions)s - 1) AS s
"""

# As if the rollups had counted the old events long ago: only counted events are pruned. (Beat
# does not run here, so the rollups stay where they are and the new events are never pruned.)
_COUNTED = """
INSERT INTO errorsink_rollup_state (id, watermark, pending_vxids)
SELECT 1, max(id), '{}' FROM errorsink_event
ON CONFLICT (id) DO UPDATE SET watermark = EXCLUDED.watermark, pending_through = NULL,
    pending_vxids = '{}'
"""


def fill_old_events(project_id: str, count: int) -> dict:
    from django.db import connection

    started = time.perf_counter()
    params = {"project": project_id, "count": count, "sessions": OLD_SESSIONS}
    with connection.cursor() as cursor:
        cursor.execute(_FILL, params)
        cursor.execute(_SESSIONS, params)
        cursor.execute(_COUNTED)
        cursor.execute("VACUUM ANALYZE errorsink_event")
        cursor.execute("VACUUM ANALYZE errorsink_session")
    return {"events": count, "seconds": round(time.perf_counter() - started, 1)}


def prune_start():
    """Send beat's prune task to the worker, as beat sends it, and wait until it deletes."""
    from errorsink.tasks import events_prune

    return deleting(events_prune.apply_async())


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


def remaining(project_id: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM errorsink_event WHERE project_id = %s", [project_id])
        return cursor.fetchone()[0]


def fresh_items() -> list[bytes]:
    """Items of a project of their own: the same items twice would be re-deliveries."""
    from errorsink.projects.models import Project

    project = Project.objects.create(name="ingest", retention_days=400)
    return mixed_items(COUNT, str(project.id))


def rates(runs: list[dict]) -> list[int]:
    return [run["events_per_second"] for run in runs]


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


def rate_figures(alone: list, beside: list) -> tuple[dict, dict, float]:
    alone_rate = statistics.median(rates(alone))
    beside_rate = statistics.median(rates(beside)) if beside else 0
    figures = [{"median_events_per_second": round(rate), "runs_events_per_second": rates(runs)}
               for rate, runs in ((alone_rate, alone), (beside_rate, beside))]  # fmt: skip
    return figures[0], figures[1], round(beside_rate / alone_rate, 3)


def main() -> dict:
    env = bench_env()
    prepare_database(env)
    import config.celery  # noqa: F401  (the task goes through the bench's own broker)
    from errorsink.projects.models import Project

    old = Project.objects.create(name="old events", retention_days=30)
    fill = fill_old_events(str(old.id), OLD_EVENTS)
    alone, pruning, prune = ingest_beside(env, prune_start, timeout=600)
    alone_figures, pruning_figures, ratio = rate_figures(alone, pruning)
    result = {
        "benchmark": "retention",
        "old_events": fill,
        "ingest_items_per_run": COUNT,
        "ingest_alone": alone_figures,
        "ingest_while_pruning": pruning_figures,
        "prune": {**prune, "events_per_second": round(prune["events"] / prune["seconds"])},
        "old_events_left": remaining(str(old.id)),
        "ratio_while_pruning_to_alone": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio >= TARGET_RATIO,
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
