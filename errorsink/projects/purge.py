"""Deleting a project (docs/teams.md): gone for everyone at once, its rows removed in the
background in batches that never hold ingest up.

At once, in one transaction: the project is marked deleted, its members, invitations, API keys,
Sentry key and alert rules are deleted. Its members' open pages close, every page and API call
about it answers 404, the front door refuses its keys, and the worker dead-letters anything
still queued for it ("unknown project").

Then a task deletes its events, sessions, rollups and issues, ``BATCH_ROWS`` at a time, each
batch its own short transaction, then sleeping three times as long as the batch took: the pacing
of retention (errorsink/projects/retention.py), under which ingest was measured keeping its rate
while 6,000 to 20,000 events a second were deleted. Last goes the project row itself. Beat
runs the same purge every few minutes, so a purge cut short (a worker restarted) finishes on
its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from errorsink.advisory_lock import advisory_lock
from errorsink.alerts.models import AlertRule, AlertSignal
from errorsink.issues.models import Issue, IssueHour, IssueSession
from errorsink.projects.models import ApiKey, Invitation, Membership, Project
from errorsink.projects.team import TeamChangeRefused, team_change_record
from errorsink.quality.models import (
    FigureCodes,
    FigureMetrics,
    FigureSessions,
)
from errorsink.sentry.keys import SentryKey
from errorsink.sessions.models import Event, Session
from errorsink.sessions.partitions import partitions_of

logger = logging.getLogger("errorsink.projects.purge")

BATCH_ROWS = 5_000
RUN_BUDGET_SECONDS = 60.0
PAUSE_RATIO = 3.0  # seconds asleep per second spent deleting, as retention
ADVISORY_LOCK_KEY = 0x6572727075726765  # "errpurge"

_ISSUE_OF_PROJECT = f"issue_id IN (SELECT id FROM {Issue._meta.db_table} WHERE project_id = %s)"
# (table, which rows are the project's), children before the rows they reference.
PURGE_TABLES: tuple[tuple[str, str], ...] = (
    (Event._meta.db_table, "project_id = %s"),
    (AlertSignal._meta.db_table, "project_id = %s"),
    (IssueHour._meta.db_table, _ISSUE_OF_PROJECT),
    (IssueSession._meta.db_table, _ISSUE_OF_PROJECT),
    (Issue._meta.db_table, "project_id = %s"),
    (Session._meta.db_table, "project_id = %s"),
    *(
        (model._meta.db_table, "project_id = %s")
        for model in (FigureSessions, FigureCodes, FigureMetrics)
    ),  # fmt: skip
)


def project_delete(*, project: Project, confirm_name: str, by: AbstractBaseUser) -> None:
    """Delete the project for everyone now; `projects_purge` removes its rows later (the
    caller queues it, and beat runs it every few minutes anyway)."""
    if (confirm_name or "").strip() != project.name:
        raise TeamChangeRefused("The name typed does not match the project's: nothing was deleted.")
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project.id).update(deleted_at=timezone.now())
        team_change_record(project=project, actor=by, action="deleted the project")
        Invitation.objects.filter(project=project, accepted_at=None).update(
            revoked_at=timezone.now()
        )
        # Deleted through the ORM so each one's signals run: sockets close, the door reloads.
        for model in (Membership, ApiKey, SentryKey, AlertRule):
            model.objects.filter(project=project).delete()
    logger.info("project %s (%s) deleted by %s; its rows go in the background",
                project.id, project.name, by.get_username())  # fmt: skip


@dataclass
class PurgeResult:
    ran: bool = False
    projects: int = 0  # removed entirely in this run
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    finished: bool = True  # False: the budget ran out with rows left for the next run


def projects_purge(
    *,
    batch_rows: int = BATCH_ROWS,
    pause_ratio: float = PAUSE_RATIO,
    budget_seconds: float = RUN_BUDGET_SECONDS,
) -> PurgeResult:
    """Remove deleted projects' rows, then the projects; one run at a time, each within a
    time budget (as retention), so a huge project never holds a worker thread for hours: the
    task queues the next run itself (errorsink/tasks.py) and beat's every 5 minutes is a net."""
    started = time.monotonic()
    result = PurgeResult()
    with advisory_lock(ADVISORY_LOCK_KEY) as taken:
        if not taken:
            return result
        result.ran = True
        deleted = Project.objects.filter(deleted_at__isnull=False).values_list("id", flat=True)
        deadline = started + budget_seconds
        for project_id in deleted:
            if not _purge_one(project_id, result, batch_rows, pause_ratio, deadline):
                result.finished = False
                break
            result.projects += 1
    result.seconds = round(time.monotonic() - started, 3)
    if result.rows:
        more = "" if result.finished else "; the next run goes on"
        logger.info("purged %d rows of deleted projects in %d batches (%.1fs), %d project(s) "
                    "gone%s", result.rows, result.batches, result.seconds, result.projects,
                    more)  # fmt: skip
    return result


def _purge_one(project_id, result: PurgeResult, batch_rows: int, pause_ratio: float,
               deadline: float) -> bool:  # fmt: skip
    """Delete one project's rows until done (True) or the deadline (False)."""
    for table, where in _leaf_tables(PURGE_TABLES):
        while True:
            if time.monotonic() >= deadline:
                return False
            batch_started = time.monotonic()
            deleted = _delete_batch(table, where, project_id, batch_rows)
            result.rows += deleted
            result.batches += 1
            if pause_ratio:
                time.sleep((time.monotonic() - batch_started) * pause_ratio)
            if deleted < batch_rows:
                break
    # What is left is small (settings, history, rules' firings): the ORM's cascade takes it.
    Project.objects.filter(id=project_id, deleted_at__isnull=False).delete()
    return True


def _leaf_tables(tables) -> list[tuple[str, str]]:
    """Each table, or each of its partitions (the event table's days): a row's address is only
    its own within one partition, so a batch picked by address from the whole table would
    delete other projects' rows of other days that happen to sit at the same addresses."""
    return [(leaf, where) for table, where in tables
            for leaf in (partitions_of(table) or [table])]  # fmt: skip


def _delete_batch(table: str, where: str, project_id, limit: int) -> int:
    """One batch in its own transaction, by physical row address (tables with composite keys
    have no single id column), of a table that is not partitioned."""
    sql = (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE {where} LIMIT %s))"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [project_id, limit])
        return cursor.rowcount
