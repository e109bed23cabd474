"""Retention (docs/quality.md): each project's raw events are deleted once older than its
retention, in small batches that never hold ingest up; rollup hours go after 13 months.

How old an event is. From when it happened (``occurred_at``: the time the dashboard shows and
the rollups bucket by), or from when it arrived where that is earlier, so that a client whose
clock runs in the future cannot keep an event forever. An event that arrives already older than
its project's retention is counted by the rollups, then pruned by the next run.

Never before the rollups. Only events the rollups have counted (ids up to their watermark) are
deleted, so every quality figure outlives the raw events it was counted from.

Never stalling ingest. A batch deletes at most ``BATCH_ROWS`` events of one project, oldest first
along the ``event_retention`` index, and the sessions it left empty, in its own short
transaction. Ingest only inserts events, so it never waits for the rows a batch deletes (but
for a re-delivered copy of one, which waits for that short transaction to end); the emptied
sessions are locked with SKIP LOCKED, so one an ingest batch is writing to is skipped
rather than waited for (it has a new event anyway). Between batches the run sleeps three times
as long as the batch took, so it is busy a quarter of the time at most and leaves the CPU to
ingest: on the 2-core machine, deleting without a pause cut ingest to 0.64 of its rate, and
with this pause ingest kept 0.84 to 1.23 of it (medians, a noisy machine) while 6,000 to
20,000 events a second went (`make bench`; README, Benchmarks). A run stops after
``RUN_BUDGET_SECONDS`` and the next run (beat, every 5 minutes) carries on; projects take
turns, one batch each, so one project's backlog never starves another's. An advisory lock keeps
two runs from overlapping.

Sessions emptied by the prune are deleted with their last events; other sessions, and the counts
of the sessions that keep some events, are left as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from errorsink.advisory_lock import advisory_lock
from errorsink.projects.models import Project
from errorsink.quality.models import FigureStretch
from errorsink.quality.rollups import figure_version_bump, rollups_watermark

logger = logging.getLogger("errorsink.projects.retention")

BATCH_ROWS = 5_000
RUN_BUDGET_SECONDS = 60.0
PAUSE_RATIO = 3.0  # seconds asleep per second spent deleting
ROLLUPS_KEPT = "13 months"
STRETCHES_KEPT = timedelta(days=1)
ADVISORY_LOCK_KEY = 0x6572727072756E65  # "errprune": a fixed key only this service takes.
# Each rollup table: its hour rows go once their bucket is over 13 months old.
ROLLUP_TABLES = ("errorsink_figure_sessions", "errorsink_figure_codes", "errorsink_figure_metrics")


@dataclass
class PruneResult:
    ran: bool = False
    events: int = 0
    sessions: int = 0
    rollup_rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    finished: bool = True  # False: the budget ran out with old rows left for the next run


def retention_prune(
    *,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    budget_seconds: float = RUN_BUDGET_SECONDS,
    pause_ratio: float = PAUSE_RATIO,
) -> PruneResult:
    """One run over every project; does nothing while another run holds the lock."""
    started = time.monotonic()
    with advisory_lock(ADVISORY_LOCK_KEY) as taken:
        if not taken:
            return PruneResult()
        result = _prune(now or timezone.now(), batch_rows, started + budget_seconds, pause_ratio)
    result.seconds = round(time.monotonic() - started, 3)
    if result.events or result.rollup_rows or not result.finished:
        more = "" if result.finished else "; the next run goes on"
        logger.info("pruned %d events, %d sessions and %d rollup rows in %d batches (%.1fs)%s",
                    result.events, result.sessions, result.rollup_rows, result.batches,
                    result.seconds, more)  # fmt: skip
    return result


def _prune(now: datetime, batch_rows: int, deadline: float, pause_ratio: float) -> PruneResult:
    result = PruneResult(ran=True)
    through = rollups_watermark()
    # Kept window stretches are keyed by the window's start, which moves every hour.
    FigureStretch.objects.filter(made_at__lt=now - STRETCHES_KEPT).delete()
    projects = list(Project.objects.order_by("id").values_list("id", "retention_days"))
    # Each job deletes one batch and says whether a full one went (so there may be more).
    jobs: list[Callable[[], bool]] = [
        _events_job(result, project_id, now - timedelta(days=days), through, batch_rows)
        for project_id, days in projects
    ]
    jobs += [
        _rollups_job(result, table, project_id, now, batch_rows)
        for project_id, _ in projects
        for table in ROLLUP_TABLES
    ]
    while jobs:
        for job in list(jobs):
            if time.monotonic() >= deadline:
                result.finished = False
                return result
            batch_started = time.monotonic()
            if not job():
                jobs.remove(job)
            result.batches += 1
            if pause_ratio:
                time.sleep((time.monotonic() - batch_started) * pause_ratio)
    return result


def _events_job(result, project_id, before: datetime, through: int, limit: int):
    def job() -> bool:
        deleted, sessions = events_prune_batch(
            project_id=project_id, before=before, through=through, limit=limit
        )
        result.events += deleted
        result.sessions += sessions
        return deleted == limit

    return job


def _rollups_job(result, table: str, project_id, now: datetime, limit: int):
    def job() -> bool:
        deleted = rollups_prune_batch(table=table, project_id=project_id, now=now, limit=limit)
        result.rollup_rows += deleted
        return deleted == limit

    return job


# ---------------------------------------------------------------------------------------------
# One batch


def events_prune_batch(
    *, project_id, before: datetime, through: int, limit: int
) -> tuple[int, int]:
    """Delete up to ``limit`` of the project's events older than ``before`` with ids up to
    ``through``, and the sessions that left empty; returns (events, sessions) deleted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_EVENTS_DELETE, [project_id, before, through, limit])
        deleted, session_ids = cursor.fetchone()
        if not session_ids:
            return deleted, 0
        # Locked first, checked in a second statement: its snapshot sees every event committed
        # by an ingest batch that wrote to the session before the lock, and a batch writing to
        # it after waits for the lock and then creates the session afresh.
        cursor.execute(_SESSIONS_LOCK, [project_id, session_ids])
        locked = [row[0] for row in cursor.fetchall()]
        if not locked:
            return deleted, 0
        cursor.execute(_SESSIONS_DELETE_EMPTY, [locked])
        return deleted, cursor.rowcount


# The ids first (ARRAY keeps the plan an index walk plus primary-key lookups, never a join over
# the table). Ordered by the index, oldest first, so no sort over the backlog.
_EVENTS_DELETE = """
WITH gone AS (
    DELETE FROM errorsink_event
    WHERE id = ANY(ARRAY(
        SELECT id FROM errorsink_event
        WHERE project_id = %s AND LEAST(occurred_at, received_at) < %s AND id <= %s
        ORDER BY LEAST(occurred_at, received_at)
        LIMIT %s
    ))
    RETURNING session_id
)
SELECT count(*), array_agg(DISTINCT session_id) FILTER (WHERE session_id <> '') FROM gone
"""

# In ingest's order (persist.py), though SKIP LOCKED means this never waits for it.
_SESSIONS_LOCK = """
SELECT id FROM errorsink_session
WHERE project_id = %s AND session_id = ANY(%s)
ORDER BY session_id COLLATE "C"
FOR UPDATE SKIP LOCKED
"""

_SESSIONS_DELETE_EMPTY = """
DELETE FROM errorsink_session s
WHERE s.id = ANY(%s) AND NOT EXISTS (
    SELECT 1 FROM errorsink_event e
    WHERE e.project_id = s.project_id AND e.session_id = s.session_id
)
"""


def rollups_prune_batch(*, table: str, project_id, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` hour and day rows of one rollup table over 13 months old; returns
    how many."""
    assert table in ROLLUP_TABLES
    # By row address, from a walk of the primary key (project, span, bucket, ...): the tables
    # have composite keys, and a row an upsert changed meanwhile is left for the next run.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM {table}
                WHERE project_id = %s AND span IN ('h', 'd')
                  AND bucket < %s::timestamptz - interval '{ROLLUPS_KEPT}'
                LIMIT %s
            ))
            """,
            [project_id, now, limit],
        )
        deleted = cursor.rowcount
        if deleted:  # a kept window stretch may hold these rows: it is stale now
            figure_version_bump(cursor, project_id)
        return deleted
