"""Keep the issue counters of DESIGN section 8 in the ingest transaction: two statements a batch
whatever its size, counted from the error rows really inserted (so a re-delivered event changes
nothing), with keys sorted so that two workers lock the same issues in the same order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from errorsink.issue_models import TITLE_MAX

if TYPE_CHECKING:
    from errorsink.ingest.persist import EventRow

_ISSUES_UPSERT = """
WITH batch AS (
    SELECT * FROM json_to_recordset(%(issues)s::json) AS x(
        project_id uuid, fingerprint uuid, parts jsonb, title text, code text, events bigint,
        first_seen timestamptz, last_seen timestamptz, builds text[], hours jsonb,
        sessions text[]
    )
),
upserted AS (
    INSERT INTO errorsink_issue AS i (
        project_id, fingerprint, fingerprint_parts, title, code, status, regressed,
        event_count, session_count, first_seen, last_seen, builds
    )
    SELECT project_id, fingerprint, parts, title, code, 'unresolved', false,
           events, 0, first_seen, last_seen, builds
    FROM batch ORDER BY project_id, fingerprint
    ON CONFLICT (project_id, fingerprint) DO UPDATE SET
        event_count = i.event_count + EXCLUDED.event_count,
        first_seen = LEAST(i.first_seen, EXCLUDED.first_seen),
        last_seen = GREATEST(i.last_seen, EXCLUDED.last_seen),
        builds = CASE WHEN EXCLUDED.builds <@ i.builds THEN i.builds ELSE ARRAY(
            SELECT DISTINCT b FROM unnest(i.builds || EXCLUDED.builds) AS b ORDER BY b
        ) END,
        -- A new event on a resolved issue reopens it, marked as a regression.
        regressed = i.regressed OR i.status = 'resolved',
        status = CASE WHEN i.status = 'resolved' THEN 'unresolved' ELSE i.status END
    RETURNING id, project_id, fingerprint
),
hours AS (
    INSERT INTO errorsink_issue_hour AS h (issue_id, hour, count)
    SELECT upserted.id, hour.key::timestamptz, hour.value::int
    FROM upserted JOIN batch USING (project_id, fingerprint), jsonb_each_text(batch.hours) hour
    ORDER BY 1, 2
    ON CONFLICT (issue_id, hour) DO UPDATE SET count = h.count + EXCLUDED.count
),
pairs AS (
    INSERT INTO errorsink_issue_session (issue_id, session_id)
    SELECT upserted.id, session_id
    FROM upserted JOIN batch USING (project_id, fingerprint), unnest(batch.sessions) session_id
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING issue_id
)
SELECT issue_id, count(*) FROM pairs GROUP BY issue_id ORDER BY issue_id
"""

# A second statement: the upsert above cannot update the rows it has just inserted.
_SESSIONS_ADD = """
UPDATE errorsink_issue AS i SET session_count = i.session_count + n.added
FROM unnest(%s::bigint[], %s::int[]) AS n(issue_id, added)
WHERE i.id = n.issue_id
"""


@dataclass(slots=True)
class _IssueBatch:
    """What one batch adds to one issue."""

    project_id: str
    fingerprint: str
    parts: list[str]
    title: str
    code: str
    first_seen: datetime
    last_seen: datetime
    events: int = 0
    builds: set[str] = field(default_factory=set)
    hours: Counter = field(default_factory=Counter)
    sessions: set[str] = field(default_factory=set)

    def add(self, row: EventRow, seen: datetime) -> None:
        self.events += 1
        self.first_seen = min(self.first_seen, seen)
        self.last_seen = max(self.last_seen, seen)
        if row.build_id:
            self.builds.add(row.build_id)
        if row.session_id:
            self.sessions.add(row.session_id)
        # The hour as a number: a datetime's replace and isoformat per row would cost the batch
        # more than its SQL; only the distinct hours become text, in as_json.
        self.hours[int(seen.timestamp()) // 3600] += 1

    def as_json(self) -> dict:
        return {
            "project_id": self.project_id, "fingerprint": self.fingerprint, "parts": self.parts,
            "title": self.title, "code": self.code, "events": self.events,
            "first_seen": self.first_seen, "last_seen": self.last_seen,
            "builds": sorted(self.builds), "sessions": sorted(self.sessions),
            "hours": {datetime.fromtimestamp(hour * 3600, UTC).isoformat(): count
                      for hour, count in self.hours.items()},
        }  # fmt: skip


def issues_upsert(cursor, rows: list[EventRow]) -> None:
    """Add the stored error rows to their issues, creating the issues they are the first of."""
    batches = _issue_batches(rows)
    if not batches:
        return
    issues = [batches[key].as_json() for key in sorted(batches)]
    cursor.execute(_ISSUES_UPSERT, {"issues": orjson.dumps(issues).decode()})
    added = cursor.fetchall()
    if added:
        ids, counts = zip(*added, strict=True)
        cursor.execute(_SESSIONS_ADD, [list(ids), list(counts)])


def _issue_batches(rows: list[EventRow]) -> dict[tuple[str, str], _IssueBatch]:
    batches: dict[tuple[str, str], _IssueBatch] = {}
    for row in rows:
        if row.fingerprint is None:
            continue
        # When it was seen, but never in the future: a skewed clock must not pin an issue to
        # the top of the list.
        seen = min(row.occurred_at, row.received_at)
        key = (row.project_id, row.fingerprint)
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = _IssueBatch(
                row.project_id, row.fingerprint, row.fingerprint_parts or [],
                _title(row), row.code, seen, seen,
            )  # fmt: skip
        batch.add(row, seen)
    return batches


def _title(row: EventRow) -> str:
    title = " ".join((row.message or row.name or row.code).split())
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
