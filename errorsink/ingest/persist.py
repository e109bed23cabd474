"""Store a batch of event rows in PostgreSQL, each event once: rows of unknown projects and rows
the database refuses come back with a reason, and the rest are written in one transaction.

Rows are COPYed into the event table and their sessions upserted in one statement, with counts
taken from the rows really inserted, so a re-delivered item changes neither rows nor counts
(see ``events_persist``). Parsing happens before this module: persistence never parses JSON.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import DataError, IntegrityError, connection, transaction

from errorsink.ingest.alert_feed import alert_counts_add
from errorsink.ingest.builds import SESSION_BUILDS, Builds
from errorsink.ingest.issues import IssuesAdded, issues_added, issues_store
from errorsink.ingest.rows import COLUMN_NAMES, EventRow
from errorsink.live import epoch_us, stored_error
from errorsink.sessions.event_keys import generation_of, generation_ready, keys_stored

PROJECT, EVENT_ID, SESSION, BUILD = map(
    EventRow._fields.index, ("project_id", "event_id", "session_id", "build_id")
)


@dataclass
class StoredBatch:
    """What one committed batch added: new event ids and kinds, grouped by project; and the
    events of a re-delivery that were stored already, to be announced again."""

    by_project: dict[uuid.UUID, list[tuple]] = field(default_factory=dict)
    # A worker killed between its commit and its notice leaves events stored that no dashboard
    # was told of; the batch comes back to another worker, which finds them stored. Announcing
    # them again is harmless (pages drop a row they show already; a timeline re-syncs).
    already_stored: dict[uuid.UUID, list[tuple]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(events) for events in self.by_project.values())

    def to_announce(self) -> dict[uuid.UUID, list[tuple]]:
        """Every event the dashboards should hear of, in id order per project."""
        if not self.already_stored:  # every batch but a re-delivery's: nothing to merge
            return self.by_project
        merged: dict[uuid.UUID, list[tuple]] = {}
        for grouped in (self.already_stored, self.by_project):
            for project_id, events in grouped.items():
                merged.setdefault(project_id, []).extend(events)
        return {project_id: sorted(events) for project_id, events in merged.items()}

    def add(self, other: StoredBatch) -> None:
        for mine, theirs in ((self.by_project, other.by_project),
                             (self.already_stored, other.already_stored)):  # fmt: skip
            for project_id, events in theirs.items():
                mine.setdefault(project_id, []).extend(events)


@dataclass
class PersistedBatch:
    stored: StoredBatch
    rejected: list[tuple[EventRow, str]]  # with the reason each was not stored


def batch_persist(rows: list[EventRow]) -> PersistedBatch:
    """Store the rows of known projects, each event once; the others come back rejected."""
    known = _existing_projects({row.project_id for row in rows})
    rejected = [
        (row, f"unknown project {row.project_id}") for row in rows if row.project_id not in known
    ]
    stored, refused = _persist_isolating_bad_rows([row for row in rows if row.project_id in known])
    return PersistedBatch(stored, rejected + refused)


def _existing_projects(project_ids: set[str]) -> set[str]:
    if not project_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM errorsink_project"
            " WHERE id = ANY(%s::uuid[]) AND deleted_at IS NULL",
            [list(project_ids)],
        )
        return {row[0] for row in cursor.fetchall()}


def _persist_isolating_bad_rows(
    rows: list[EventRow],
) -> tuple[StoredBatch, list[tuple[EventRow, str]]]:
    """Store rows; if the database refuses the batch for its data, split it until the rows it
    refuses are alone, and hand those back with its reason."""
    try:
        return events_persist(rows), []
    except (DataError, IntegrityError) as exc:
        if len(rows) == 1:
            return StoredBatch(), [(rows[0], f"rejected by the database: {exc}".strip())]
        middle = len(rows) // 2
        stored, rejected = _persist_isolating_bad_rows(rows[:middle])
        more, more_rejected = _persist_isolating_bad_rows(rows[middle:])
        stored.add(more)
        return stored, rejected + more_rejected


def events_persist(rows: list[EventRow]) -> StoredBatch:
    """Store rows in one transaction; events stored already are skipped.

    Each event's key (project, event id) goes into the key table (errorsink/sessions/
    event_keys.py) with its id, and the key decides whether an event is stored already: the
    previous generation's keys are looked up first, and the fast path COPYs the batch's keys,
    then its events. A key the current generation holds makes the key COPY fail (a re-delivery);
    the savepoint rolls back and the batch goes through INSERT ... ON CONFLICT DO NOTHING on the
    keys instead, storing the events whose keys went in. Either way the sessions are upserted
    with counts from exactly the rows inserted.
    """
    if not rows:
        return StoredBatch()
    rows = _first_of_each_event(rows)
    generation = generation_of(rows[0].received_at)  # a batch arrives at one time
    generation_ready(generation)
    with transaction.atomic():
        found = keys_stored([(row.project_id, row.event_id) for row in rows],
                            generations=range(generation - 1, generation))  # fmt: skip
        earlier = _with_ids(found, rows)
        if earlier:
            rows = [row for row in rows if (row.project_id, row.event_id) not in found]
        if not rows:  # all of it stored in the previous generation: only announce it again
            return StoredBatch(already_stored=_stored_batch(earlier).by_project)
        try:
            with transaction.atomic():
                batch = _persist_by_copy(rows, generation)
        except IntegrityError:
            batch = _persist_by_upsert(rows, generation)
    if earlier:
        batch.add(StoredBatch(already_stored=_stored_batch(earlier).by_project))
    return batch


_KEYS_INSERT = """
INSERT INTO errorsink_event_key (project_id, event_id, generation, event)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::bigint[])
ON CONFLICT DO NOTHING
RETURNING event
"""


def _persist_by_upsert(rows: list[EventRow], generation: int) -> StoredBatch:
    with connection.cursor() as cursor:
        ids = _ids_drawn(cursor, len(rows))
        cursor.execute(_KEYS_INSERT, [[row.project_id for row in rows],
                                      [row.event_id for row in rows], [generation] * len(rows),
                                      ids])  # fmt: skip
        inserted = {pk for (pk,) in cursor.fetchall()}
        stored = [(pk, row) for pk, row in zip(ids, rows, strict=True) if pk in inserted]
        inserted_rows = [row for _, row in stored]
        # Counted from the rows really inserted: a re-delivered event changes no count.
        sessions = sessions_summed(inserted_rows)
        builds = _builds_of(inserted_rows, sessions.builds)
        _events_copy(cursor, stored, builds)
        issues = issues_added(inserted_rows, builds)
        _counters_add(cursor, issues, sessions, inserted_rows)
    others = [row for pk, row in zip(ids, rows, strict=True) if pk not in inserted]
    found = keys_stored([(row.project_id, row.event_id) for row in others],
                        generations=range(generation - 1, generation + 1))  # fmt: skip
    batch = _stored_batch(stored)
    batch.already_stored = _stored_batch(_with_ids(found, others)).by_project
    return batch


def _with_ids(
    found: dict[tuple[str, str], int], rows: list[EventRow]
) -> list[tuple[int, EventRow]]:
    """The rows stored before, with their stored ids."""
    return [(found[key], row) for row in rows
            if (key := (row.project_id, row.event_id)) in found]  # fmt: skip


def _first_of_each_event(rows: list[EventRow]) -> list[EventRow]:
    """A batch may hold the same item twice (pushed twice in a burst): keep the first."""
    keys = [(row[PROJECT], row[EVENT_ID]) for row in rows]
    if len(set(keys)) == len(rows):  # the common case: nothing to drop
        return rows
    firsts = {}
    for key, row in zip(keys, rows, strict=True):
        firsts.setdefault(key, row)
    return list(firsts.values())


def _stored_batch(stored: list[tuple[int, EventRow]]) -> StoredBatch:
    grouped: dict[str, list[tuple]] = defaultdict(list)
    arrivals: dict[datetime, int] = {}  # a batch's rows share one arrival: converted once
    for event_pk, row in stored:
        if row.kind != "error":
            grouped[row.project_id].append((event_pk, row.kind))
            continue
        # What the project pages pick their rows by, so the pick reads nothing (errorsink/live.py).
        arrival = arrivals.get(row.received_at)
        if arrival is None:
            arrival = arrivals[row.received_at] = epoch_us(row.received_at)
        grouped[row.project_id].append(stored_error(event_pk, row.code, row.source, arrival))
    # One UUID per project, not per row: building one costs more than the rest of the loop.
    return StoredBatch(by_project={uuid.UUID(key): events for key, events in grouped.items()})


def _persist_by_copy(rows: list[EventRow], generation: int) -> StoredBatch:
    # Optimistic: re-deliveries are rare (a worker died mid-batch), so the batch is not checked
    # against the current generation's keys first; a duplicate makes the key COPY fail and the
    # caller takes the ON CONFLICT path instead.
    sessions = sessions_summed(rows)
    builds = _builds_of(rows, sessions.builds)
    # Every row is inserted or none is: the issues' share is worked out before any lock is taken.
    issues = issues_added(rows, builds)
    with connection.cursor() as cursor:
        stored = list(zip(_ids_drawn(cursor, len(rows)), rows, strict=True))
        _copy(cursor, "COPY errorsink_event_key (project_id, event_id, generation, event) "
              "FROM STDIN", [(row.project_id, row.event_id, generation, pk)
                             for pk, row in stored])  # fmt: skip
        _events_copy(cursor, stored, builds)
        _counters_add(cursor, issues, sessions, rows)
    return _stored_batch(stored)


def _counters_add(cursor, issues: IssuesAdded | None, sessions: SessionsSummed,
                  rows: list[EventRow]) -> None:  # fmt: skip
    """The statements that update rows other batches update too (issues, sessions, alert
    counters), last: each holds its row locks until the commit, and the other reader threads'
    batches wait on them, so nothing slow may come after them (the events' COPY came first)."""
    issues_store(cursor, issues)
    _sessions_store(cursor, sessions)
    alert_counts_add(cursor, rows)


def _ids_drawn(cursor, count: int) -> list[int]:
    # Ids drawn up front keep arrival order and tell the notifier what was stored.
    cursor.execute("SELECT array(SELECT nextval('errorsink_event_id_seq')"
                   " FROM generate_series(1, %s))", [count])  # fmt: skip
    return cursor.fetchone()[0]


def _events_copy(cursor, stored: list[tuple[int, EventRow]], builds: Builds) -> None:
    """COPY the rows, the id drawn for each taking the place of its seq; a row that names no
    build takes its session's (errorsink/ingest/builds.py)."""
    copy_sql = f"COPY errorsink_event (id, {', '.join(COLUMN_NAMES)}) FROM STDIN"
    _copy(cursor, copy_sql, [
        (pk, *row[1:BUILD], builds.get((row[PROJECT], row[SESSION]), ""), *row[BUILD + 1:-1])
        if not row[BUILD] and row[SESSION] and builds else (pk, *row[1:-1])
        for pk, row in stored
    ])  # fmt: skip


def _copy(cursor, sql: str, rows: list[tuple]) -> None:
    # COPY bypasses Django's cursor wrapper; map psycopg's errors to django.db's so callers
    # tell a duplicate (IntegrityError) or bad data (DataError) from an outage.
    with connection.wrap_database_errors, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


_SESSIONS_UPSERT = """
INSERT INTO errorsink_session AS s (
    project_id, session_id, build_id, customer_context, first_seen, last_seen,
    error_count, warning_count, event_count, end_cause
)
SELECT project_id, session_id, build_id, customer_context, first_seen, last_seen,
       error_count, warning_count, event_count, end_cause
FROM json_to_recordset(%s::json) AS x(
    project_id uuid, session_id text, build_id text, customer_context jsonb,
    first_seen timestamptz, last_seen timestamptz, error_count int, warning_count int,
    event_count int, end_cause text
)
ON CONFLICT (project_id, session_id) DO UPDATE SET
    build_id = CASE WHEN EXCLUDED.build_id <> '' THEN EXCLUDED.build_id ELSE s.build_id END,
    customer_context = COALESCE(EXCLUDED.customer_context, s.customer_context),
    first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
    error_count = s.error_count + EXCLUDED.error_count,
    warning_count = s.warning_count + EXCLUDED.warning_count,
    event_count = s.event_count + EXCLUDED.event_count,
    end_cause = CASE WHEN EXCLUDED.end_cause <> '' THEN EXCLUDED.end_cause ELSE s.end_cause END
"""


@dataclass
class SessionsSummed:
    """What a batch adds to its sessions, ready for the upsert."""

    payload: str | None  # the upsert's JSON, an entry per session; None without sessions
    builds: Builds  # the build a row of the batch gives each session


def sessions_summed(rows: list[EventRow]) -> SessionsSummed:
    """The rows' sessions, counted from the rows: pure Python, before any lock is taken."""
    sessions: dict[tuple[str, str], dict] = {}
    for row in rows:
        if not row.session_id:
            continue
        key, kind, occurred_at = (row.project_id, row.session_id), row.kind, row.occurred_at
        entry = sessions.get(key)
        if entry is None:
            entry = sessions[key] = {
                "project_id": row.project_id, "session_id": row.session_id, "build_id": "",
                "customer_context": None, "first_seen": occurred_at, "last_seen": occurred_at,
                "error_count": 0, "warning_count": 0, "event_count": 0, "end_cause": "",
            }  # fmt: skip
        entry["build_id"] = row.build_id or entry["build_id"]
        entry["customer_context"] = entry["customer_context"] or row.customer_context
        entry["first_seen"] = min(entry["first_seen"], occurred_at)
        entry["last_seen"] = max(entry["last_seen"], occurred_at)
        entry["error_count"] += kind == "error"
        entry["warning_count"] += kind == "warning"
        entry["event_count"] += kind != "turn"  # a turn's spans are not events of the call
        if kind == "termination":
            entry["end_cause"] = row.code
    if not sessions:
        return SessionsSummed(None, {})
    # Sorted keys: two workers touching the same sessions lock them in the same order. The
    # context is already JSON text; it goes in as a JSON string and is parsed by PostgreSQL.
    ordered = [sessions[key] for key in sorted(sessions)]
    for entry in ordered:
        if entry["customer_context"] is not None:
            entry["customer_context"] = orjson.Fragment(entry["customer_context"])
    builds = {key: entry["build_id"] for key, entry in sessions.items() if entry["build_id"]}
    return SessionsSummed(orjson.dumps(ordered).decode(), builds)


def _sessions_store(cursor, summed: SessionsSummed) -> None:
    """One upsert for every session of the batch."""
    if summed.payload is not None:
        cursor.execute(_SESSIONS_UPSERT, [summed.payload])


def _builds_of(rows: list[EventRow], given: Builds) -> Builds:
    """The build of each session of a row that names none (errorsink/ingest/builds.py); what
    the batch itself says is remembered once it is stored."""
    if given:
        transaction.on_commit(lambda: SESSION_BUILDS.remember(given))
    wanted = {(row[PROJECT], row[SESSION]) for row in rows if not row[BUILD] and row[SESSION]}
    return SESSION_BUILDS.of(wanted, given) if wanted else {}
