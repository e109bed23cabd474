"""Retention by dropping days while ingest runs: 10,000,000 events past their project's
retention are inserted into their days' partitions (generate_series, in PostgreSQL), then, in
the same run and with the same worker, the ingest benchmark (100,000 mixed items pushed until
committed) runs alone, then with the prune task sent a moment after each run starts (it drops
the old days: docs/storage.md), then alone again; the median rates are compared (target: with
the prune, at least 80% of the rate alone), and the drop is timed.

The prune is sent to the worker as beat sends it and runs in its task pool, in the same
process as the queue reader threads, on its own database connection. The first run it meets
drops every old day; the next ones find none left, so only the first "while pruning" run counts
the drop, and its rate is reported on its own.

Run with `make bench` (or `python -m bench.retention`); prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from bench.common import bench_env, prepare_database
from bench.ingest import COUNT, ingest_once, running_worker
from bench.items import mixed_items

OLD_EVENTS = int(os.environ.get("BENCH_RETENTION_OLD_EVENTS", "10000000"))
OLD_DAYS = range(31, 78)  # days ago: past a 30-day retention
OLD_SESSIONS = 20_000
# Ingest runs alone before the prune, while it runs, and alone after it.
ROUNDS = 4
TARGET_RATIO = 0.8
PRUNE_AFTER_SECONDS = 1.0  # into an ingest run of about 4 s

# Past a 30-day retention (31 to 77 days old), in time order as ingest would have stored them,
# in the kinds of the ingest mix; their keys are long gone (their generations dropped).
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
     LATERAL (SELECT date_trunc('day', now(), 'UTC') - interval '77 days'
                     + n * (interval '46 days' / %(count)s)) AS x(t)
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
    from errorsink.sessions.partitions import partition_make

    today = timezone_today()
    for days in OLD_DAYS:
        partition_make(today - timedelta(days=days))
    with connection.cursor() as cursor:
        cursor.execute(_FILL, params)
        cursor.execute(_SESSIONS, params)
        cursor.execute(_COUNTED)
        cursor.execute("VACUUM ANALYZE errorsink_event")
        cursor.execute("VACUUM ANALYZE errorsink_session")
    return {"events": count, "seconds": round(time.perf_counter() - started, 1)}


def timezone_today():
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


def prune_beside(items: list[bytes], worker) -> tuple[dict, dict]:
    """One ingest run with beat's prune task sent to the worker a moment after it starts; the
    run's figures and the task's outcome."""
    from errorsink.tasks import events_prune

    task: dict = {}

    def send() -> None:
        time.sleep(PRUNE_AFTER_SECONDS)
        task["result"] = events_prune.apply_async()

    sender = threading.Thread(target=send)
    sender.start()
    run = ingest_once(items, worker)
    sender.join()
    return run, task["result"].get(timeout=600)


def remaining(project_id: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM errorsink_event WHERE project_id = %s", [project_id])
        return cursor.fetchone()[0]


def fresh_items() -> list[bytes]:
    """Items of a project of their own (the same items twice would be re-deliveries), dated now:
    it keeps them 30 days like the old project, so every project's retention has passed the old
    days and they are dropped whole."""
    from datetime import UTC, datetime

    from errorsink.projects.models import Project

    project = Project.objects.create(name="ingest", retention_days=30)
    return mixed_items(COUNT, str(project.id), start=datetime.now(UTC))


def rates(runs: list[dict]) -> list[int]:
    return [run["events_per_second"] for run in runs]


def ingest_beside(env: dict) -> tuple[list, list, list]:
    """Ingest alone, then with the prune sent into each run, then alone again (the table grew
    meanwhile, so the alone runs bracket the others)."""
    alone, beside, outcomes = [], [], []
    with tempfile.TemporaryDirectory() as logdir, running_worker(env, Path(logdir)) as worker:
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
        for _ in range(ROUNDS):
            run, outcome = prune_beside(fresh_items(), worker)
            beside.append(run)
            outcomes.append(outcome)
        alone += [ingest_once(fresh_items(), worker) for _ in range(ROUNDS)]
    return alone, beside, outcomes


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
    alone, pruning, outcomes = ingest_beside(env)
    alone_figures, pruning_figures, ratio = rate_figures(alone, pruning)
    dropping = outcomes[0]
    result = {
        "benchmark": "retention",
        "old_events": fill,
        "ingest_items_per_run": COUNT,
        "ingest_alone": alone_figures,
        "ingest_while_pruning": pruning_figures,
        "prune_first_run": {
            key: dropping[key]
            for key in (
                "events",
                "sessions",
                "partitions_dropped",
                "drop_seconds",
                "seconds",
                "finished",
            )
        },  # fmt: skip
        "ratio_of_the_dropping_run_to_alone": round(
            rates(pruning)[0] / statistics.median(rates(alone)), 3
        ),
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
