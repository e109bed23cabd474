"""Keep the issue counters of docs/issues.md in the ingest transaction: two statements a batch
whatever its size, counted from the error rows really inserted (so a re-delivered event changes
nothing), with keys sorted so that two workers lock the same issues in the same order.

A session is counted once per issue, when its (issue, session) row is first inserted. Most of a
batch's pairs were stored by earlier batches, and probing the table for each costs PostgreSQL
more than the rest of the issue statement: so each worker process remembers the pairs it saw
committed and sends them apart, to be written only if the issue's id is not the one remembered
(the issue was deleted with its project and made again). The memory relies on issue ids never
being drawn twice: after a sequence reset (`TRUNCATE ... RESTART IDENTITY`, as the benchmarks
do, or a restore) the workers must be restarted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING

import orjson
from django.db import transaction

from errorsink.issues.models import TITLE_MAX

if TYPE_CHECKING:
    from errorsink.ingest.builds import Builds
    from errorsink.ingest.rows import EventRow

_ISSUES_UPSERT = """
WITH batch AS (
    SELECT * FROM json_to_recordset(%(issues)s::json) AS x(
        project_id uuid, fingerprint uuid, parts jsonb, title text, code text, events bigint,
        first_seen timestamptz, last_seen timestamptz, builds text[], hours jsonb,
        sessions text[], known_id bigint, known_sessions text[], n int
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
        regressed_at = CASE WHEN i.status = 'resolved' THEN now() ELSE i.regressed_at END,
        status = CASE WHEN i.status = 'resolved' THEN 'unresolved' ELSE i.status END
    -- xmax is 0 on a row this statement inserted; now() is this transaction's start, so an
    -- issue reopened by this statement is one whose regressed_at is now().
    RETURNING id, project_id, fingerprint, xmax = 0 AS created,
              regressed_at IS NOT DISTINCT FROM now() AS reopened
),
signals AS (
    -- For the alert rules on new issues and regressions (errorsink/alerts/evaluate.py).
    INSERT INTO errorsink_alert_signal (project_id, issue_id, kind, at)
    SELECT project_id, id, CASE WHEN created THEN 'new_issue' ELSE 'regression' END, now()
    FROM upserted WHERE created OR reopened
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
    FROM upserted JOIN batch USING (project_id, fingerprint), unnest(
        -- The remembered pairs only when the memory was of another issue (see above).
        CASE WHEN upserted.id IS DISTINCT FROM batch.known_id
             THEN batch.sessions || batch.known_sessions ELSE batch.sessions END
    ) session_id
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING issue_id
),
added AS (SELECT issue_id, count(*) AS added FROM pairs GROUP BY issue_id)
SELECT batch.n, upserted.id, coalesce(added.added, 0)
FROM upserted JOIN batch USING (project_id, fingerprint)
LEFT JOIN added ON added.issue_id = upserted.id
ORDER BY upserted.id
"""

# A second statement: the upsert above cannot update the rows it has just inserted.
_SESSIONS_ADD = """
UPDATE errorsink_issue AS i SET session_count = i.session_count + n.added
FROM unnest(%s::bigint[], %s::int[]) AS n(issue_id, added)
WHERE i.id = n.issue_id
"""


class StoredPairs:
    """The (issue id, session id) pairs this process saw committed, and the id of the issue each
    group of a batch belongs to. Kept exactly (no hashes: a false match would leave a session
    uncounted), as a set of sessions per issue so that a batch's sessions are split by set
    operations; bounded: forgotten all at once when full, which only costs the next batches the
    probes this saves (50,000 pairs of 25-character session ids are about 10 MB)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self.issue_ids: dict[tuple[str, str], int] = {}
        self.sessions: dict[int, set[str]] = {}
        self.pair_count = 0

    def split(self, group: tuple[str, str], sessions: set[str]) -> tuple[int | None, list, list]:
        """The issue id remembered for the group, and its sessions as new and remembered."""
        issue_id = self.issue_ids.get(group)
        if issue_id is None:
            return None, sorted(sessions), []
        known = sessions & self.sessions.get(issue_id, set())
        return issue_id, sorted(sessions - known), sorted(known)

    def remember(self, issue_ids: dict[tuple[str, str], int], sessions: dict) -> None:
        if self.pair_count > self.limit or len(self.issue_ids) > self.limit:
            self.issue_ids.clear()
            self.sessions.clear()
            self.pair_count = 0
        self.issue_ids.update(issue_ids)
        for group, issue_id in issue_ids.items():
            known = self.sessions.setdefault(issue_id, set())
            before = len(known)
            known.update(sessions[group])
            self.pair_count += len(known) - before


STORED_PAIRS = StoredPairs()


@dataclass(frozen=True)
class IssuesAdded:
    """What a batch adds to its issues, ready for the upsert: built before the batch's
    transaction takes any row lock (see ``issues_added``)."""

    keys: list[tuple[str, str]]  # (project id, fingerprint) of each issue, sorted
    payload: str  # the upsert's JSON, an entry per key in the same order
    sessions: dict[tuple[str, str], list[str]]  # each issue's sessions in the batch


def issues_added(rows: list[EventRow], session_builds: Builds | None = None) -> IssuesAdded | None:
    """The issues' share of the rows, or None when no row is an error of an issue. Pure
    Python, and called by ingest before its first locking statement: concurrent batches lock
    the same issue and session rows until they commit, and Python run inside that span also
    waits for the interpreter lock behind the other ingest threads. An error that names no
    build counts under its session's, from ``session_builds`` (errorsink/ingest/builds.py)."""
    groups = _rows_by_issue(rows)
    if not groups:
        return None
    keys = sorted(groups)
    issues = [_issue_added(key, groups[key], n, session_builds or {})
              for n, key in enumerate(keys)]  # fmt: skip
    sessions = {key: [*issue["sessions"], *issue["known_sessions"]]
                for key, issue in zip(keys, issues, strict=True)}  # fmt: skip
    return IssuesAdded(keys, orjson.dumps(issues).decode(), sessions)


def issues_store(cursor, added: IssuesAdded | None) -> None:
    """Add a batch's stored error rows to their issues (``issues_added`` of exactly the rows
    inserted), creating the issues they are the first of."""
    if added is None:
        return
    cursor.execute(_ISSUES_UPSERT, {"issues": added.payload})
    returned = cursor.fetchall()
    counted = [(issue_id, count) for _, issue_id, count in returned if count]
    if counted:
        ids, counts = zip(*counted, strict=True)
        cursor.execute(_SESSIONS_ADD, [list(ids), list(counts)])
    issue_ids = {added.keys[n]: issue_id for n, issue_id, _ in returned}
    # Only once committed: a batch rolled back stored no pair.
    transaction.on_commit(lambda: STORED_PAIRS.remember(issue_ids, added.sessions))


def issues_upsert(cursor, rows: list[EventRow]) -> None:
    """Add the stored error rows to their issues, creating the issues they are the first of."""
    issues_store(cursor, issues_added(rows))


@cache
def _summarised(fields: tuple[str, ...]) -> itemgetter:
    """A getter of the columns an issue is summarised from, for rows with these fields."""
    at = fields.index
    return itemgetter(at("session_id"), at("occurred_at"), at("received_at"), at("build_id"))


def _rows_by_issue(rows: list[EventRow]) -> dict[tuple[str, str], list[EventRow]]:
    groups: dict[tuple[str, str], list[EventRow]] = defaultdict(list)
    for row in rows:
        if row.fingerprint is not None:
            groups[row.project_id, row.fingerprint].append(row)
    return groups


def _issue_added(
    key: tuple[str, str], rows: list[EventRow], n: int, session_builds: Builds
) -> dict:
    """What one batch adds to the n-th issue, as the upsert reads it. Summarised a column at a
    time (taken out of the rows in C): a pass per figure costs the batch a fraction of an object
    updated row by row."""
    first = rows[0]
    sessions, occurred, received, builds = zip(*map(_summarised(first._fields), rows), strict=True)
    # When it was seen, but never in the future: a skewed clock must not pin an issue to the
    # top of the list.
    seen = list(map(min, occurred, received))
    first_seen, last_seen = min(seen), max(seen)
    known_id, new, known = STORED_PAIRS.split(key, set(sessions) - {""})
    return {
        "project_id": first.project_id, "fingerprint": first.fingerprint,
        "parts": first.fingerprint_parts or [], "title": _title(first), "code": first.code,
        "events": len(rows), "first_seen": first_seen, "last_seen": last_seen,
        "builds": _builds(first.project_id, sessions, builds, session_builds),
        "hours": _per_hour(seen, first_seen, last_seen),
        "sessions": new, "known_id": known_id, "known_sessions": known, "n": n,
    }  # fmt: skip


def _builds(project_id: str, sessions: tuple[str, ...], builds: tuple[str, ...],
            session_builds: Builds) -> list[str]:  # fmt: skip
    named = set(builds)
    if "" in named and session_builds:
        unnamed = {session for session, build in zip(sessions, builds, strict=True) if not build}
        named |= {session_builds.get((project_id, session), "") for session in unnamed}
    return sorted(named - {""})


def _per_hour(seen: list[datetime], first_seen: datetime, last_seen: datetime) -> dict:
    """Events per clock hour, keyed by the hour's start; a live batch spans seconds, so when its
    first and last moments share an hour no moment is read again."""
    first_hour = int(first_seen.timestamp()) // 3600
    if first_hour == int(last_seen.timestamp()) // 3600:
        hours = Counter({first_hour: len(seen)})
    else:  # a backfill, or a batch across an hour's end: the hour as a number per moment
        hours = Counter([int(moment.timestamp()) // 3600 for moment in seen])
    return {datetime.fromtimestamp(hour * 3600, UTC).isoformat(): count
            for hour, count in hours.items()}  # fmt: skip


def _title(row: EventRow) -> str:
    title = " ".join((row.message or row.name or row.code).split())
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
