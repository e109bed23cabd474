"""Write a batch of normalised events to PostgreSQL in one transaction.

Rows go through COPY into a temporary table, then one statement inserts them into the event
table (ON CONFLICT DO NOTHING on the idempotency key) and upserts their sessions from the rows
that were really inserted, so a re-delivered item changes neither rows nor counts. Parsing
happens before this module: persistence never looks at JSON text except to store it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import connection, transaction

from errorsink.ingest.normalise import NormalisedEvent

_COLUMNS = (
    "seq", "project_id", "event_id", "session_id", "kind", "code", "name", "message",
    "occurred_at", "received_at", "source", "severity", "recoverable", "build_id", "stack",
    "customer_context", "details", "item_type", "raw",
)  # fmt: skip

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    seq integer, project_id uuid, event_id text, session_id text, kind text, code text,
    name text, message text, occurred_at timestamptz, received_at timestamptz, source text,
    severity text, recoverable boolean, build_id text, stack text, customer_context text,
    details text, item_type text, raw text
) ON COMMIT DELETE ROWS
"""

_INSERT_FROM_STAGING = """
WITH inserted AS (
    INSERT INTO errorsink_event (
        project_id, event_id, session_id, kind, code, name, message, occurred_at, received_at,
        source, severity, recoverable, build_id, stack, customer_context, details, item_type, raw
    )
    SELECT project_id, event_id, session_id, kind, code, name, message, occurred_at,
           received_at, source, severity, recoverable, build_id, stack,
           customer_context::jsonb, details::jsonb, item_type, raw::jsonb
    FROM ingest_staging ORDER BY seq
    ON CONFLICT (project_id, event_id) DO NOTHING
    RETURNING id, project_id, session_id, kind, code, occurred_at, build_id, customer_context
), sessions AS (
    INSERT INTO errorsink_session AS s (
        project_id, session_id, build_id, customer_context, first_seen, last_seen,
        error_count, warning_count, event_count, end_cause
    )
    SELECT project_id, session_id,
           COALESCE(MAX(NULLIF(build_id, '')), ''),
           (ARRAY_AGG(customer_context) FILTER (WHERE customer_context IS NOT NULL))[1],
           MIN(occurred_at), MAX(occurred_at),
           COUNT(*) FILTER (WHERE kind = 'error'), COUNT(*) FILTER (WHERE kind = 'warning'),
           COUNT(*), COALESCE(MAX(code) FILTER (WHERE kind = 'termination'), '')
    FROM inserted WHERE session_id <> ''
    GROUP BY project_id, session_id
    -- A stable order of row locks keeps two workers from deadlocking on the same sessions.
    ORDER BY project_id, session_id
    ON CONFLICT (project_id, session_id) DO UPDATE SET
        build_id = CASE WHEN EXCLUDED.build_id <> '' THEN EXCLUDED.build_id ELSE s.build_id END,
        customer_context = COALESCE(EXCLUDED.customer_context, s.customer_context),
        first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
        last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
        error_count = s.error_count + EXCLUDED.error_count,
        warning_count = s.warning_count + EXCLUDED.warning_count,
        event_count = s.event_count + EXCLUDED.event_count,
        end_cause = CASE WHEN EXCLUDED.end_cause <> '' THEN EXCLUDED.end_cause
                         ELSE s.end_cause END
)
SELECT id, project_id, kind FROM inserted ORDER BY id
"""


@dataclass
class StoredBatch:
    """What one committed batch added: new event ids and kinds, grouped by project."""

    by_project: dict[uuid.UUID, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(events) for events in self.by_project.values())


def _clean_text(value: str | None) -> str:
    # PostgreSQL text cannot hold NUL; keep the rest of the string rather than lose the event.
    if not value:
        return ""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode().replace("\\u0000", "\\ufffd")


def staging_row(seq: int, event: NormalisedEvent, raw_text: str, received_at: datetime) -> tuple:
    """One COPY row; ``raw_text`` is the item as it came, stored without re-serialising."""
    return (
        seq, event.project_id, event.event_id, _clean_text(event.session_id), event.kind,
        _clean_text(event.code), _clean_text(event.name), _clean_text(event.message),
        event.occurred_at or received_at, received_at, event.source, event.severity,
        event.recoverable, _clean_text(event.build_id), _clean_text(event.stack),
        _json_text(event.customer_context), _json_text(event.details), event.item_type,
        raw_text.replace("\\u0000", "\\ufffd"),
    )  # fmt: skip


def existing_projects(project_ids: set[str]) -> set[str]:
    if not project_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM errorsink_project WHERE id = ANY(%s::uuid[])", [list(project_ids)]
        )
        return {row[0] for row in cursor.fetchall()}


def events_persist(rows: list[tuple]) -> StoredBatch:
    """Store staging rows (see ``staging_row``) atomically; duplicates are skipped."""
    stored = StoredBatch()
    if not rows:
        return stored
    grouped: dict[uuid.UUID, list[tuple[int, str]]] = defaultdict(list)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CREATE_STAGING)
        with cursor.copy(f"COPY ingest_staging ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT_FROM_STAGING)
        for event_pk, project_id, kind in cursor.fetchall():
            grouped[project_id].append((event_pk, kind))
    stored.by_project = dict(grouped)
    return stored
