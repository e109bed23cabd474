"""Compute the quality rollups (docs/quality.md) from stored events, incrementally and
idempotently, behind a snapshot horizon so that no late-committing event is ever skipped.

Why a horizon. Ingest draws event ids with nextval inside its batch transaction, so id 900 may
commit after id 1000 has been read: "id > watermark" alone would skip 900 forever. Each run
therefore takes a *reading*: the sequence's last value L and the virtual transaction ids of
every client transaction running in this database. The reading is kept as pending, and ids in
(watermark, L] are processed only once none of the remembered virtual transactions is still
running: the run waits up to ``HORIZON_WAIT_SECONDS`` for them (ingest's batches commit in
milliseconds), else a later run goes on from the saved reading. (Not the snapshot's xmin: it
spans every database of the server and waits for transactions that cannot hold an event id,
and a transaction gets an xid only at its first write, so a batch that has drawn its ids but
not yet begun its COPY is invisible to it anyway.)
Every transaction holds a lock on its own virtual xid from start to end, released after its
commit became visible; any transaction that drew an id <= L was running or finished when the
lock list was read just after L, so once all of those are gone every id <= L is committed (or
was rolled back for good).

Idempotent. Ids are processed in chunks of ``CHUNK_IDS`` events, each in one transaction that locks
the state row, checks the watermark is still where the chunk starts, merges the chunk into the
figure tables (errorsink/quality/figures.py) and moves the watermark: running twice, or two runs
at once, counts each event once. A PostgreSQL advisory lock keeps a second run from even trying
while one is busy.

Builds. Every event of a session counts under the session's build (its latest non-empty one),
whatever order and batch its items arrive in: a browser's warning knows no build, and the error
that brings it may be stored after the warning was counted. Each chunk reads the build from the
session row; the row remembers the build its events were counted under (``figures_build``), and
when the two differ the chunk also moves the session's earlier events (every id up to the
chunk's start) out of the old build's figures and into the new one's. Events without a session
row count under their own build. Events retention has already deleted cannot move and stay
under the old build.

Figure rows are written in key order, so concurrent writers would lock in the same order.
Session rows are locked in the order ingest uses for its session upsert (project, then session
id, byte order), which keeps the two from deadlocking.

Metric values are valid when they are JSON numbers within
``errorsink.quality.metrics.METRIC_RANGES`` (loss 0-100 %, MOS 1-5, times 0-600 s); anything else is
left out of averages and percentiles and never fails a run. Ingest already keeps invalid values out
of a new warning's metrics (with the reason beside them), but events stored before it did may still
hold them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from errorsink.advisory_lock import advisory_lock
from errorsink.quality.figures import MINUTE_ROWS_PRUNE, figures_apply
from errorsink.quality.models import MINUTE_ROWS_KEPT
from errorsink.quality.tags import TAG_BY_CODE

logger = logging.getLogger("errorsink.quality.rollups")

CHUNK_IDS = 50_000
# Enough chunks that one run catches up with a long outage in minutes, few enough that a run
# started by beat ends long before the lock would be worth waiting for.
MAX_CHUNKS_PER_RUN = 40
# A pending reading older than this means a transaction is holding the figures back.
HELD_BACK_WARNING_SECONDS = 30
# How long a run waits for the transactions its reading saw before leaving them to the next run.
HORIZON_WAIT_SECONDS = 1.0
HORIZON_POLL_SECONDS = 0.05
ADVISORY_LOCK_KEY = 0x6572726F7273696E  # "errorsin": a fixed key only this service takes.
# Telnyx network-quality (310xx), data-flow (320xx) and connectivity (330xx) warnings make a
# session degraded (docs/quality.md), except the ones SDK 2.27 added to those ranges that say
# nothing about the call's audio or connection: recording (32003/32004) and an application's own
# doing (33006-33011: answering twice, a changed candidate pair, several calls at once ...). A
# team reading "12% degraded" means calls that sounded bad or dropped. 360xx never counts.
DEGRADED_CODE_PATTERN = "^3[123]0[0-9][0-9]$"
NOT_DEGRADED_CODES = ("32003", "32004", "33006", "33007", "33008", "33009", "33010", "33011")


@dataclass(frozen=True)
class Reading:
    through: int
    vxids: frozenset[str]


@dataclass
class RunResult:
    ran: bool = False
    processed_through: int | None = None
    chunks: int = 0
    # The projects whose figures changed, for the dashboards to redraw.
    projects: set = field(default_factory=set)


def rollups_update() -> RunResult:
    """One run: process what the last reading's horizon allows, then take a new reading.

    Returns without doing anything when another run holds the lock.
    """
    with advisory_lock(ADVISORY_LOCK_KEY) as taken:
        return _run() if taken else RunResult()


def _run() -> RunResult:
    state = _state_load()
    reading = _reading_take()
    result = RunResult(ran=True)
    watermark = state["watermark"]
    pending, held_since = _pending_of(state), state["updated_at"]
    if pending is None and reading.through > watermark:
        pending, held_since = reading, None
        _pending_save(reading)
    if pending is not None and _horizon_passed(pending, held_since):
        watermark = _process_until(watermark, pending.through, result)
        if watermark >= pending.through:
            pending = None
            # Taken before processing: whatever it saw waits for the next run.
            if reading.through > watermark:
                _pending_save(reading)
            else:
                _pending_clear()
    _minute_rows_prune()
    return result


def _pending_of(state: dict) -> Reading | None:
    if state["pending_through"] is None:
        return None
    return Reading(through=state["pending_through"], vxids=frozenset(state["pending_vxids"]))


def _horizon_passed(pending: Reading, held_since: datetime | None) -> bool:
    """Waits a moment for the transactions the reading saw: ingest's are short, so the figures
    usually move in the same run instead of one beat interval later."""
    deadline = time.monotonic() + HORIZON_WAIT_SECONDS
    while pending.vxids and _still_running(pending.vxids):
        if time.monotonic() >= deadline:
            if held_since is not None:
                _warn_if_held_back(held_since)
            return False
        time.sleep(HORIZON_POLL_SECONDS)
    return True


def _still_running(vxids: frozenset[str]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'virtualxid' AND granted "
            "AND virtualxid = ANY(%s))",
            [sorted(vxids)],
        )
        return cursor.fetchone()[0]


def _warn_if_held_back(held_since: datetime) -> None:
    """Figures should trail ingest by seconds; a transaction left open holds them back."""
    age = (timezone.now() - held_since).total_seconds()
    if age > HELD_BACK_WARNING_SECONDS:
        logger.warning("quality rollups held back %.0fs by a transaction still open since the "
                    "reading (e.g. an idle-in-transaction session)", age)  # fmt: skip


def _process_until(watermark: int, through: int, result: RunResult) -> int:
    while watermark < through and result.chunks < MAX_CHUNKS_PER_RUN:
        upper = _chunk_end(watermark, through)
        projects = rollups_apply(after=watermark, through=upper)
        if projects is None:
            break  # someone else moved the watermark; the next run starts from theirs
        watermark = upper
        result.chunks += 1
        result.processed_through = watermark
        result.projects |= projects
    return watermark


def _chunk_end(watermark: int, through: int) -> int:
    """The id that ends a chunk of CHUNK_IDS events: counted in events, not ids, so a gap in the
    ids (rolled-back batches, a restored database) costs nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM errorsink_event WHERE id > %s AND id <= %s ORDER BY id "
            "OFFSET %s LIMIT 1",
            [watermark, through, CHUNK_IDS - 1],
        )
        row = cursor.fetchone()
    return row[0] if row else through


def rollups_watermark() -> int:
    """How far the rollups got: every event id up to this one is in the figures."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT watermark FROM errorsink_rollup_state WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


# ---------------------------------------------------------------------------------------------
# State, reading and lock


def _state_load() -> dict:
    # An upsert rather than a SELECT so the first run (or one after a flush) needs no setup.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO errorsink_rollup_state AS s (id, watermark, pending_vxids) "
            "VALUES (1, 0, '{}') ON CONFLICT (id) DO UPDATE SET id = s.id "
            "RETURNING watermark, pending_through, pending_vxids, updated_at"
        )
        watermark, through, vxids, updated_at = cursor.fetchone()
    return {"watermark": watermark, "pending_through": through, "pending_vxids": vxids,
            "updated_at": updated_at}  # fmt: skip


def _reading_take() -> Reading:
    """The sequence first, then the running transactions: see the module docstring."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
            "FROM errorsink_event_id_seq"
        )
        (through,) = cursor.fetchone()
        cursor.execute(
            "SELECT l.virtualxid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid() "
            "AND a.backend_type = 'client backend' AND a.datname = current_database()"
        )
        vxids = frozenset(row[0] for row in cursor.fetchall())
    return Reading(through=through, vxids=vxids)


def _pending_save(reading: Reading) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE errorsink_rollup_state SET pending_through = %s, "
            "pending_vxids = %s, updated_at = now() WHERE id = 1",
            [reading.through, sorted(reading.vxids)],
        )


def _pending_clear() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE errorsink_rollup_state SET pending_through = NULL, "
            "pending_vxids = '{}', updated_at = now() WHERE id = 1"
        )


def _minute_rows_prune() -> None:
    with connection.cursor() as cursor:
        cursor.execute(MINUTE_ROWS_PRUNE)


# ---------------------------------------------------------------------------------------------
# One chunk


def rollups_apply(*, after: int, through: int) -> set | None:
    """Count the events with ids in (after, through] and move the watermark to ``through``, in
    one transaction; returns the projects whose figures changed, or None (and nothing done) when
    the watermark is no longer ``after``.

    The caller vouches that every id in the range has committed or never will (the horizon);
    tests whose own open transaction holds the events call it directly.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT watermark FROM errorsink_rollup_state WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
        if row is None or row[0] != after:
            return None
        cursor.execute(_CHUNK, {"after": after, "through": through})
        cursor.execute(_MOVES, {"after": after})
        # A new temporary table has no statistics: without them the planner sorted every
        # grouping below on disk instead of hashing it (3x the time for a 50,000-event chunk).
        cursor.execute("ANALYZE rollup_chunk")
        cursor.execute("SELECT DISTINCT project_id FROM rollup_chunk")
        projects = {project_id for (project_id,) in cursor.fetchall()}
        figures_apply(cursor)
        cursor.execute(_VERSIONS_BUMP)
        cursor.execute(_SESSIONS_UPDATE, [list(TAG_BY_CODE), list(TAG_BY_CODE.values())])
        # Dropped now rather than at commit: a caller's outer transaction may apply again.
        cursor.execute("DROP TABLE rollup_chunk")
        cursor.execute(
            "UPDATE errorsink_rollup_state SET watermark = %s, updated_at = now() WHERE id = 1",
            [through],
        )
    return projects


# Merged stretches of days before today are kept under their project's figure version
# (errorsink/quality/figure_reads.py, "Closed days"): a chunk that reaches any other day than
# today bumps it, today by the database's clock as this statement runs. So does a chunk in the
# day's last minute, whose commit (moments after this) may land in tomorrow, when a reader
# already takes today as closed. A reader keeps only days before the database's today.
_VERSION_BUMPED = (
    "ON CONFLICT (project_id) DO UPDATE SET version = errorsink_figure_version.version + 1\n"
)
_VERSIONS_BUMP = f"""
INSERT INTO errorsink_figure_version (project_id, version)
SELECT DISTINCT project_id, 1 FROM rollup_chunk
WHERE day <> date_trunc('day', clock_timestamp(), 'UTC')
   OR date_trunc('day', clock_timestamp() + interval '1 minute', 'UTC')
      <> date_trunc('day', clock_timestamp(), 'UTC')
{_VERSION_BUMPED}"""


def figure_version_bump(cursor, project_id: object) -> None:
    """For a change to a project's figure rows other than a rollup chunk's (pruning)."""
    cursor.execute(f"INSERT INTO errorsink_figure_version (project_id, version) "
                   f"VALUES (%s, 1) {_VERSION_BUMPED}", [project_id])  # fmt: skip


# The columns the figures group by, of one event ``e``. The minute bucket is null for events too
# old to need one. Only integral SIP statuses (100-699) count as SIP codes, else 0.
_EVENT_COLUMNS = f"""
       e.project_id, e.session_id, e.kind, e.code,
       date_trunc('hour', e.occurred_at, 'UTC') AS hour,
       date_trunc('day', e.occurred_at, 'UTC') AS day,
       CASE WHEN e.occurred_at >= now() - interval '{MINUTE_ROWS_KEPT}'
            THEN date_trunc('minute', e.occurred_at, 'UTC') END AS minute,
       (e.kind = 'warning' AND e.code ~ '{DEGRADED_CODE_PATTERN}'
        AND e.code NOT IN ({", ".join(f"'{code}'" for code in NOT_DEGRADED_CODES)})) AS degraded,
       CASE WHEN e.kind = 'termination' AND x.sip BETWEEN 100 AND 699 AND x.sip = trunc(x.sip)
            THEN x.sip::int ELSE 0 END AS sip_code,
       CASE WHEN e.kind IN ('warning', 'turn') AND jsonb_typeof(e.details -> 'metrics') = 'object'
            THEN e.details -> 'metrics' END AS metrics"""
_SIP = """
CROSS JOIN LATERAL (
    SELECT CASE WHEN jsonb_typeof(e.details #> '{termination,sip_code}') = 'number'
                THEN (e.details #>> '{termination,sip_code}')::numeric END AS sip
) AS x"""

# Each event of the chunk once, counted (sign 1) under its session's build as the session row
# has it now; an event without a session row under its own. ``figures_build`` is the build the
# session's earlier events were counted under.
_CHUNK = f"""
CREATE TEMP TABLE rollup_chunk AS
SELECT {_EVENT_COLUMNS},
       CASE WHEN s.id IS NULL THEN e.build_id ELSE s.build_id END AS build_id,
       1 AS sign, false AS moved, s.id AS session_row, s.figures_build
FROM errorsink_event e
LEFT JOIN errorsink_session s
       ON s.project_id = e.project_id AND s.session_id = e.session_id AND e.session_id <> ''
{_SIP}
WHERE e.id > %(after)s AND e.id <= %(through)s
"""

# A session whose build moved on since its earlier events were counted: those events (every id
# up to the chunk's start was counted) come out of the old build (sign -1) and into the new one.
_MOVES = f"""
WITH moves AS (
    SELECT DISTINCT project_id, session_id, figures_build AS old_build, build_id AS new_build
    FROM rollup_chunk
    WHERE figures_build IS NOT NULL AND figures_build <> build_id AND NOT moved
)
INSERT INTO rollup_chunk
SELECT {_EVENT_COLUMNS}, side.build_id, side.sign, true, NULL, NULL
FROM moves m
JOIN errorsink_event e ON e.project_id = m.project_id AND e.session_id = m.session_id
{_SIP}
CROSS JOIN LATERAL (VALUES (m.old_build, -1), (m.new_build, 1)) AS side(build_id, sign)
WHERE e.id <= %(after)s
"""

# Lock the sessions in ingest's order (see module docstring) before changing them: the tags
# and degraded flag from the chunk's own events (the same events the figures count as
# degraded), and the build the figures now count the session under.
_SESSIONS_UPDATE = """
WITH chunk_sessions AS (
    SELECT c.session_row, min(c.build_id) AS build_id,
           coalesce(array_agg(DISTINCT m.tag) FILTER (WHERE m.tag IS NOT NULL), '{}') AS tags,
           bool_or(c.degraded) AS degraded
    FROM rollup_chunk c
    LEFT JOIN unnest(%s::text[], %s::text[]) AS m(code, tag)
           ON m.code = c.code AND c.kind IN ('error', 'warning')
    WHERE c.session_row IS NOT NULL
    GROUP BY 1
), locked AS (
    SELECT s.id, cs.tags, cs.degraded, cs.build_id
    FROM errorsink_session s
    JOIN chunk_sessions cs ON s.id = cs.session_row
    WHERE NOT cs.tags::varchar(32)[] <@ s.quality_tags
       OR (cs.degraded AND NOT s.degraded)
       OR s.figures_build IS DISTINCT FROM cs.build_id
    ORDER BY s.project_id::text COLLATE "C", s.session_id COLLATE "C"
    FOR UPDATE OF s
)
UPDATE errorsink_session s
SET quality_tags = ARRAY(
    SELECT DISTINCT tag FROM unnest(s.quality_tags || locked.tags::varchar(32)[]) AS tag
    ORDER BY tag
),
    degraded = s.degraded OR locked.degraded,
    figures_build = locked.build_id
FROM locked
WHERE s.id = locked.id
"""
