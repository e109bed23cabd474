"""Errors stored before issues existed get their fingerprint and join their issues, in batches
behind the ingest (a periodic task): an upgraded installation's history shows up in triage
without a long migration that would hold the event table.

Each batch claims rows still without a fingerprint (FOR UPDATE SKIP LOCKED), sets it and adds
the rows to their issues in the same transaction, exactly as ingest would have: rows that have a
fingerprint are never counted again, so a run cut short or repeated changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction

from errorsink.advisory_lock import advisory_lock
from errorsink.ingest.formats.shared import FINGERPRINT_PARTS_MAX, ID_MAX
from errorsink.ingest.issues import issues_upsert
from errorsink.issues.grouping import fingerprint_key, fingerprint_parts

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x6572726973737565  # "errissue": a fixed key only this service takes.
BATCH_SIZE = 5000
BUDGET_SECONDS = 50.0

_CLAIM = """
SELECT id, project_id::text, session_id, code, name, message, stack, build_id, occurred_at,
       received_at, raw -> 'fingerprint'
FROM errorsink_event
WHERE kind = 'error' AND fingerprint IS NULL
ORDER BY id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

_SET = """
UPDATE errorsink_event AS e SET fingerprint = v.fingerprint
FROM unnest(%s::bigint[], %s::uuid[]) AS v(id, fingerprint)
WHERE e.id = v.id
"""


class BackfillRow(NamedTuple):
    """The fields of an event row that issues_upsert reads."""

    project_id: str
    session_id: str
    code: str
    name: str
    message: str
    build_id: str
    occurred_at: datetime
    received_at: datetime
    fingerprint: str
    fingerprint_parts: list[str]


@dataclass
class BackfillResult:
    ran: bool = False
    errors: int = 0
    finished: bool = False


def issues_backfill(*, budget_seconds: float = BUDGET_SECONDS) -> BackfillResult:
    """Group stored errors that have no issue yet, batch by batch, within the time budget."""
    result = BackfillResult()
    with advisory_lock(ADVISORY_LOCK_KEY) as taken:
        if not taken:
            return result
        result.ran = True
        deadline = time.monotonic() + budget_seconds
        # At least one batch a run, however short the budget: each run makes progress (a busy
        # machine could otherwise spend the budget before the first check).
        while True:
            done = _batch_backfill()
            result.errors += done
            if done < BATCH_SIZE:
                result.finished = True
                break
            if time.monotonic() >= deadline:
                break
    if result.errors:
        log.info("grouped %d earlier errors into issues%s", result.errors,
                 "" if result.finished else "; more next run")  # fmt: skip
    return result


def _batch_backfill() -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM, [BATCH_SIZE])
        rows = [_row(*record) for record in cursor.fetchall()]
        if not rows:
            return 0
        cursor.execute(_SET, [[pk for pk, _ in rows], [row.fingerprint for _, row in rows]])
        issues_upsert(cursor, [row for _, row in rows])
    return len(rows)


def _row(pk: int, project_id: str, session_id: str, code: str, name: str, message: str,
         stack: str, build_id: str, occurred_at: datetime, received_at: datetime,
         own: object) -> tuple[int, BackfillRow]:  # fmt: skip
    parts = fingerprint_parts(code=code, message=message, stack=stack, custom=_own(own))
    return pk, BackfillRow(project_id, session_id, code, name, message, build_id, occurred_at,
                           received_at, fingerprint_key(parts), parts)  # fmt: skip


def _own(value: object) -> list[str] | None:
    """An item's own fingerprint as ingest would have accepted it; anything else is ignored
    (items stored before issues existed were never checked for one)."""
    if (
        isinstance(value, list)
        and 0 < len(value) <= FINGERPRINT_PARTS_MAX
        and all(isinstance(part, str) and 0 < len(part) <= ID_MAX for part in value)
    ):
        return value
    return None
