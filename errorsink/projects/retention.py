"""Retention (docs/storage.md): each project's raw events go once older than its retention, by
whole daily partitions where every project's retention has passed them, row by row only where
a project keeps less than the longest; rollup hours go after 13 months.

How old an event is. By its partition, from when it happened (``occurred_at``: the time the
dashboard shows and the rollups bucket by): a day's events go once the end of their day is
older than the retention, so an event outlives its retention by less than a day. The default
partition (errorsink/sessions/partitions.py) holds events outside the daily partitions (a clock
years off, days before the first partition); there age counts from when it happened or arrived,
whichever is earlier, so that a client whose clock runs in the future cannot keep an event
forever, and an event that arrives already older than its retention goes at the next run.

Whole partitions. Each run first makes the partitions ahead, then drops the daily partitions past
the longest retention of any project (``partitions_drop``): a file unlinked, no dead rows, no
vacuum. Only a project that keeps less than the longest has its rows of the days between deleted
row by row, a day's partition at a time (``BATCH_ROWS`` at a time along the project's own index
entries), as do the default partition's old rows.

Never before the rollups. Only events the rollups have counted (ids up to their watermark) are
deleted or dropped, so every quality figure outlives the raw events it was counted from.

Never stalling ingest. A row batch deletes at most ``BATCH_ROWS`` events of one project, and the
sessions it left empty, in its own short transaction. Ingest only inserts events, so it never
waits for the rows a batch deletes (but for a re-delivered copy of one, which waits for that
short transaction to end); the emptied sessions are locked with SKIP LOCKED, so one an ingest
batch is writing to is skipped rather than waited for (it has a new event anyway). Between
batches the run sleeps three times as long as the batch took, so it is busy a quarter of the
time at most and leaves the CPU to ingest. A run stops after ``RUN_BUDGET_SECONDS`` and the next
run (beat, every 5 minutes) carries on; projects take turns, one batch each, so one project's
backlog never starves another's. An advisory lock keeps two runs from overlapping.

Sessions emptied are deleted with their last events; other sessions, and the counts of the
sessions that keep some events, are left as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from errorsink.advisory_lock import advisory_lock
from errorsink.projects.models import Project
from errorsink.quality.models import FigureStretch
from errorsink.quality.rollups import figure_version_bump, rollups_watermark
from errorsink.sessions.event_keys import generations_keep
from errorsink.sessions.partitions import (
    DEFAULT_PARTITION,
    day_start,
    partition_days,
    partition_name,
    partitions_drop,
    partitions_make,
)

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
    partitions_dropped: int = 0
    drop_seconds: float = 0.0  # the drop itself: the table held, the files unlinked
    partitions_made: int = 0
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
    result.partitions_made = len(partitions_make(now=now))
    generations_keep(now=now)  # the idempotency keys' (errorsink/sessions/event_keys.py)
    projects = list(Project.objects.order_by("id").values_list("id", "retention_days"))
    longest = max((days for _, days in projects), default=settings.ERRORSINK_RETENTION_DAYS)
    dropped = partitions_drop(before=now - timedelta(days=longest), counted_through=through)
    result.partitions_dropped, result.drop_seconds = len(dropped.days), dropped.seconds
    result.events += dropped.events
    result.sessions += dropped.sessions
    jobs = _row_jobs(result, projects, now, through, batch_rows) + [
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


def _row_jobs(result, projects, now: datetime, through: int, limit: int) -> list[Callable]:
    """Each job deletes one batch and says whether a full one went (so there may be more): the
    default partition's old rows of each project, and a shorter-lived project's rows of each
    day's partition its retention has passed but another project's has not (the days past
    every retention are dropped whole, by this run or, if it could not have the table, the
    next)."""
    days = partition_days()
    kept_from = now - timedelta(days=max((retention for _, retention in projects), default=0))
    jobs = []
    for project_id, retention in projects:
        before = now - timedelta(days=retention)
        jobs.append(_events_job(result, DEFAULT_PARTITION, project_id, before, through, limit))
        jobs += [_events_job(result, partition_name(day), project_id, None, through, limit)
                 for day in days
                 if kept_from < day_start(day + timedelta(days=1)) <= before]  # fmt: skip
    return jobs


def _events_job(result, table: str, project_id, before: datetime | None, through: int,
                limit: int):  # fmt: skip
    def job() -> bool:
        deleted, sessions = events_prune_batch(
            project_id=project_id, before=before, through=through, limit=limit, table=table
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
    *, project_id, before: datetime | None, through: int, limit: int,
    table: str = DEFAULT_PARTITION,
) -> tuple[int, int]:  # fmt: skip
    """Delete up to ``limit`` of the project's events in ``table`` (a partition) with ids up to
    ``through``, older than ``before`` where given (else all of them), and the sessions that
    left empty; returns (events, sessions) deleted."""
    assert table == DEFAULT_PARTITION or table.startswith("errorsink_event_p")
    # The default partition's rows by age, oldest first; a day's partition's all at once.
    age = "" if before is None else _OLDER_THAN_BEFORE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_EVENTS_DELETE.format(table=table, age=age),
                       {"project": project_id, "before": before, "through": through,
                        "limit": limit})  # fmt: skip
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


_OLDER_THAN_BEFORE = (
    "AND LEAST(occurred_at, received_at) < %(before)s ORDER BY LEAST(occurred_at, received_at)"
)
# By row address, from the project's own entries of the partition's indexes (the addresses
# first, as an array, keeps the plan a walk of those entries, never a join over the table).
_EVENTS_DELETE = """
WITH gone AS (
    DELETE FROM {table}
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM {table}
        WHERE project_id = %(project)s AND id <= %(through)s {age}
        LIMIT %(limit)s
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
