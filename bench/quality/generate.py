"""Generated history for the scale part: rows as ingest writes them, straight into PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from bench.quality.common import (
    BUILDS,
    EVENTS_PER_SESSION,
    ROLLOUT_SECONDS,
    SESSIONS_PER_CHUNK,
    TROUBLED_PERCENT,
    progress,
)

# ---------------------------------------------------------------------------------------------
# Generated history: rows as ingest writes them, straight into PostgreSQL
#
# Each kind of item a session sends is a template, normalised once by the real ingest code for
# the columns that do not change; PostgreSQL fills in the rest per event (ids, times, builds,
# metrics, the item's own text) with format(). "@name@" marks those places, numbered in
# PLACEHOLDERS' order; a quoted one stays a JSON string, the others become JSON numbers.

PLACEHOLDERS = {"project": True, "session": True, "event": True, "when": True, "build": True,
                "rtt": False, "jitter": False, "loss": False, "mos": False,
                "epoch_ms": False}  # fmt: skip
SAMPLE_VALUES = {"session": "sample-session", "event": "sample-event", "build": "v0",
                 "when": "2026-11-01T00:00:00.000Z", "rtt": 420, "jitter": 48.5, "loss": 7.5,
                 "mos": 2.9, "epoch_ms": 1793491200000}  # fmt: skip
_IDS = {"project_id": "@project@", "session_id": "@session@", "event_id": "@event@"}
METRICS = {"rtt_ms": "@rtt@", "jitter_ms": "@jitter@", "packet_loss_pct": "@loss@", "mos": "@mos@"}


def _runner(kind: str, **fields) -> dict:
    return {"type": kind, **_IDS, **fields, "build_id": "@build@", "occurred_at": "@when@"}


def _sdk(sdk: str, name: str, event: dict) -> dict:
    # A browser SDK does not know the agent's build: ingest gives the event its session's.
    return {"type": "sdk_event", "sdk": sdk, "name": name, **_IDS, "occurred_at": "@when@",
            "event": event}  # fmt: skip


def _telnyx_warning(code: int, name: str, message: str) -> dict:
    return _sdk("telnyx", "telnyx.warning",
                {"warning": {"code": code, "name": name, "message": message}})  # fmt: skip


def _end(cause: str, cause_code: int | None, sip_code: int | None, reason: str | None) -> dict:
    codes = {"cause_code": cause_code, "sip_code": sip_code, "sip_reason": reason}
    return _runner("session_end", cause=cause, **{k: v for k, v in codes.items() if v is not None})


STACK = ("TypeError: Cannot read properties of undefined (reading 'text')\n"
         "    at onUserSpeechFinal (agent/handlers.js:88:21)\n"
         "    at Runner.dispatch (runner/dispatch.js:141:9)")  # fmt: skip
# (group, weight within the group, item). Troubled sessions send warnings (30% of all events),
# a session's last event says how it ended (5%), errors make 10%, the rest is info.
VARIANTS = [
    ("warning", 22, _runner("session_warning", code=31002, metrics=METRICS)),
    ("warning", 6, _runner("session_warning", code="HIGH_JITTER", metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code=31001, metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code=31003, metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code="LOW_MOS", metrics=METRICS)),
    ("warning", 8, _telnyx_warning(32001, "LOW_BYTES_RECEIVED", "No audio received")),
    ("warning", 4, _telnyx_warning(32002, "LOW_BYTES_SENT", "No audio sent")),
    ("warning", 8, _telnyx_warning(33001, "ICE_CONNECTIVITY_LOST", "ICE connectivity lost")),
    ("warning", 3, _telnyx_warning(33002, "ICE_GATHERING_TIMEOUT", "ICE gathering timed out")),
    ("warning", 2, _telnyx_warning(33003, "ICE_GATHERING_EMPTY", "No ICE candidates")),
    ("warning", 3, _telnyx_warning(33004, "PEER_CONNECTION_FAILED", "Peer connection failed")),
    ("warning", 2, _telnyx_warning(33005, "ONLY_HOST_ICE_CANDIDATES", "Only host candidates")),
    ("error", 30, _runner("session_error", code="AGENT_HANDLER_FAILED", recoverable=False,
                          message="handler threw on turn 3", stack=STACK,
                          customer_context={"userId": "u_4821", "tier": "pro"})),
    ("error", 10, _runner("session_error", code="AGENT_CHILD_CRASHED",
                          message="agent child exited with code 1")),
    ("error", 5, _runner("agent_error", message="legacy crash: child process exited")),
    ("error", 5, _runner("session_error", code="RUNNER_INTERNAL",
                         message="crash TTS could not play")),
    ("error", 15, _runner("session_error", code="WEBRTC_CONNECTION_FAILED",
                          message="ICE failed before the call connected")),
    ("error", 20, _sdk("telnyx", "telnyx.error", {"error": {
        "code": 45002, "name": "WEBSOCKET_ERROR", "message": "Connection to server lost"}})),
    ("error", 15, _sdk("onebudd", "error", {
        "type": "error", "version": "1", "session_id": "@session@", "timestamp": "@epoch_ms@",
        "payload": {"code": "stt_failed", "message": "Speech recognition failed: invalid audio "
                    "format", "fatal": False}})),
    ("info", 100, _runner("session_error", code="SESSION_IDLE_TIMEOUT",
                          message="no activity for 300 s")),
    ("end", 68, _end("NORMAL_CLEARING", 16, 200, "OK")),
    ("end", 8, _end("USER_BUSY", 17, 486, "Busy Here")),
    ("end", 8, _end("NO_ANSWER", 19, 480, "Temporarily Unavailable")),
    ("end", 5, _end("CALL_REJECTED", 21, 603, "Decline")),
    ("end", 3, _end("UNALLOCATED_NUMBER", 1, 404, "Not Found")),
    ("end", 3, _end("PURGE", None, None, None)),
    ("end", 5, _sdk("telnyx", "telnyx.notification", {"type": "callUpdate", "call": {
        "state": "hangup", "cause": "NORMAL_CLEARING", "causeCode": 16, "sipCode": 200,
        "sipReason": "OK"}})),
]  # fmt: skip
GROUPS = ("warning", "error", "info", "end")


def _filled(template: object, values: dict) -> object:
    """The template with every placeholder replaced by its value."""
    if isinstance(template, dict):
        return {key: _filled(value, values) for key, value in template.items()}
    if isinstance(template, str) and template.startswith("@") and template.endswith("@"):
        return values[template.strip("@")]
    return template


def _format_string(template: dict) -> str:
    """The item's JSON text as a format() string: placeholders become %N$s."""
    text = orjson.dumps(template).decode().replace("%", "%%")
    for position, (name, quoted) in enumerate(PLACEHOLDERS.items(), start=1):
        text = text.replace(f'"@{name}@"', f'"%{position}$s"' if quoted else f"%{position}$s")
    return text


def _variants_create(project_id: str) -> dict[str, list[int]]:
    """The temp table of templates with their normalised columns; per group, 100 slots of
    variant ids in proportion to the weights (a random slot picks a variant)."""
    from django.db import connection

    from errorsink.ingest.batch import batch_rows

    rows, slots = [], {group: [] for group in GROUPS}
    for number, (group, weight, template) in enumerate(VARIANTS):
        sample = _filled(template, {**SAMPLE_VALUES, "project": project_id})
        [row] = batch_rows([orjson.dumps(sample)], received_at=datetime.now(UTC)).rows
        rows.append((number, row.kind, row.code, row.name, row.message, row.source, row.severity,
                     row.recoverable, row.stack, row.customer_context, row.details,
                     row.item_type, _format_string(template), "metrics" in template))  # fmt: skip
        slots[group] += [number] * weight
    assert all(len(numbers) == 100 for numbers in slots.values()), "weights must add up to 100"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_variant (id int PRIMARY KEY, kind text, "
            "code text, name text, message text, source text, severity text, "
            "recoverable boolean, stack text, customer_context jsonb, details jsonb, "
            "item_type text, raw text, metrics boolean)"
        )
        cursor.execute("TRUNCATE bench_variant")
        cursor.executemany(f"INSERT INTO bench_variant VALUES ({', '.join(['%s'] * 14)})", rows)
    return slots


# Sessions in time order, each with its project (by hash, in the layout's shares), build (the
# one released before it started, the older one for part of a 12-hour rollout), 12 to 28 events
# over 2 to 12 minutes, and whether it has quality trouble; each event picks its variant and
# metric values by hash, so a run is repeatable. The sessions table gets each session's counts
# from exactly the rows inserted, as ingest's upsert does.
_GENERATE = """
WITH sessions AS (
    SELECT s, x.h, %(start)s::timestamptz + x.at * interval '1 second' AS started,
           (%(projects)s::uuid[])[1 + width_bucket((x.h %% 100000)::int, %(thresholds)s::int[])]
               AS project_id,
           (%(builds)s::text[])[1 + y.k - CASE WHEN y.k > 0 AND y.since < %(rollout)s
               AND (x.h >> 32) %% 1000 >= y.since / %(rollout)s * 1000 THEN 1 ELSE 0 END]
               AS build_id,
           md5('session' || s)::uuid::text AS session_id,
           (x.h >> 8) %% 100 < %(troubled)s AS troubled,
           (12 + (x.h >> 16) %% 17)::int AS events,
           (120 + (x.h >> 24) %% 600)::int AS seconds
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS s
    CROSS JOIN LATERAL (SELECT hashint8extended(s, 1) & 9223372036854775807 AS h,
                               (s + 0.5) * %(spacing)s AS at) AS x
    CROSS JOIN LATERAL (SELECT k, x.at - k * %(period)s AS since
                        FROM least(floor(x.at / %(period)s)::int, %(last_build)s) AS k) AS y
), events AS (
    SELECT ss.project_id, ss.session_id, ss.build_id, z.r,
           date_trunc('milliseconds',
                      ss.started + ss.seconds * j::float8 / (ss.events - 1) * interval '1 second')
               AS occurred_at,
           md5('event' || (ss.s * 32 + j))::uuid::text AS event_id,
           CASE WHEN j = ss.events - 1 THEN (%(end_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                WHEN ss.troubled AND z.r %% 1000 < 700
                    THEN (%(warning_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                WHEN z.r %% 1000 < CASE WHEN ss.troubled THEN 800 ELSE 110 END
                    THEN (%(error_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                ELSE (%(info_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int] END AS variant,
           40 + (z.r >> 20) %% 900 AS rtt,
           round(((z.r >> 30) %% 1200)::numeric / 10, 1) AS jitter,
           round(((z.r >> 40) %% 150)::numeric / 10, 1) AS loss,
           round(1 + ((z.r >> 50) %% 340)::numeric / 100, 2) AS mos
    FROM sessions ss
    CROSS JOIN LATERAL generate_series(0, ss.events - 1) AS j
    CROSS JOIN LATERAL (SELECT hashint8extended(ss.s * 32 + j, 2) & 9223372036854775807 AS r) z
), inserted AS (
    INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
        occurred_at, received_at, source, severity, recoverable, build_id, stack,
        customer_context, details, item_type, raw)
    SELECT e.project_id, e.event_id, e.session_id, v.kind, v.code, v.name, v.message,
           e.occurred_at, e.occurred_at + (40 + (e.r >> 12) %% 400) * interval '1 millisecond',
           v.source, v.severity, v.recoverable, e.build_id, v.stack, v.customer_context,
           CASE WHEN v.metrics THEN jsonb_build_object('metrics', jsonb_build_object(
               'rtt_ms', e.rtt, 'jitter_ms', e.jitter, 'packet_loss_pct', e.loss, 'mos', e.mos))
               ELSE v.details END,
           v.item_type,
           format(v.raw, e.project_id, e.session_id, e.event_id,
                  to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  e.build_id, e.rtt, e.jitter, e.loss, e.mos,
                  (extract(epoch FROM e.occurred_at) * 1000)::bigint)::json
    FROM events e JOIN bench_variant v ON v.id = e.variant
    RETURNING project_id, session_id, build_id, kind, code, occurred_at, customer_context
)
INSERT INTO errorsink_session (project_id, session_id, build_id, customer_context, first_seen,
    last_seen, error_count, warning_count, event_count, end_cause)
SELECT project_id, session_id, max(build_id),
       (array_agg(customer_context) FILTER (WHERE customer_context IS NOT NULL))[1],
       min(occurred_at), max(occurred_at), count(*) FILTER (WHERE kind = 'error'),
       count(*) FILTER (WHERE kind = 'warning'), count(*),
       coalesce(max(code) FILTER (WHERE kind = 'termination'), '')
FROM inserted
GROUP BY project_id, session_id
"""


def generate_events(layout: list[tuple[str, float]], *, events: int) -> dict:
    """About `events` events over the 30-day window up to a quarter of an hour ago, across the
    projects of `layout` (project id, share of the events); the largest share takes the rest."""
    from django.db import connection

    from errorsink.quality.selectors import quality_window

    layout = sorted(layout, key=lambda entry: entry[1])
    sessions = max(1, round(events / EVENTS_PER_SESSION))
    start = quality_window("30d").start
    span = (datetime.now(UTC) - timedelta(minutes=15) - start).total_seconds()
    params = {
        "start": start, "spacing": span / sessions, "period": span / BUILDS,
        "rollout": ROLLOUT_SECONDS, "last_build": BUILDS - 1, "troubled": TROUBLED_PERCENT,
        "builds": [f"v3.{k + 1}.0" for k in range(BUILDS)],
        "projects": [project for project, _ in layout],
        "thresholds": _thresholds([share for _, share in layout[:-1]]),
    }  # fmt: skip
    slots = _variants_create(layout[0][0])
    params |= {f"{group}_slots": numbers for group, numbers in slots.items()}
    started = time.perf_counter()
    for first in range(0, sessions, SESSIONS_PER_CHUNK):
        last = min(sessions, first + SESSIONS_PER_CHUNK) - 1
        with connection.cursor() as cursor:
            cursor.execute(_GENERATE, params | {"first": first, "last": last})
        if first == 0:
            _rows_check(project_ids={project for project, _ in layout})
        _generation_progress(started, last + 1, sessions)
    seconds = time.perf_counter() - started
    return _generated_summary(seconds, sessions)


def _thresholds(shares: list[float]) -> list[int]:
    """width_bucket() bounds out of 100,000 for the cumulative shares."""
    bounds, total = [], 0.0
    for share in shares:
        total += share
        bounds.append(round(total * 100_000))
    return bounds


def _generation_progress(started: float, done_sessions: int, sessions: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM errorsink_event_id_seq")
        stored = cursor.fetchone()[0]
    elapsed = time.perf_counter() - started
    left = elapsed / done_sessions * (sessions - done_sessions)
    progress(f"generated {stored:,} events ({done_sessions:,}/{sessions:,} sessions), "
              f"{stored / elapsed:,.0f} events/s, about {left:.0f} s left")  # fmt: skip


def _generated_summary(seconds: float, sessions: int) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*), count(*) FILTER (WHERE details ? 'metrics') "
            "FROM errorsink_event GROUP BY kind ORDER BY kind"
        )
        by_kind = {kind: (count, metrics) for kind, count, metrics in cursor.fetchall()}
        cursor.execute("SELECT count(*), count(DISTINCT build_id) FROM errorsink_session")
        stored_sessions, builds = cursor.fetchone()
    total = sum(count for count, _ in by_kind.values())
    return {
        "events": total, "sessions": stored_sessions, "builds": builds,
        "seconds": round(seconds, 1), "events_per_second": round(total / seconds),
        "share_by_kind": {kind: round(count / total, 3) for kind, (count, _) in by_kind.items()},
        "warnings_with_metrics": by_kind.get("warning", (0, 0))[1],
    }  # fmt: skip


_CHECKED = ("project_id", "event_id", "session_id", "kind", "code", "name", "message",
            "occurred_at", "received_at", "source", "severity", "recoverable", "stack",
            "item_type", "raw")  # fmt: skip


def _rows_check(*, project_ids: set[str]) -> None:
    """Every variant among the first rows, read back and normalised again by the real ingest
    code from its own item text, must give the row stored: the generated rows are what ingest
    would have written."""
    from django.db import connection

    from errorsink.ingest.batch import batch_rows

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (code, item_type) project_id::text, event_id, session_id, kind, "
            "code, name, message, occurred_at, received_at, source, severity, recoverable, "
            "stack, item_type, raw::text, build_id, customer_context::text, details::text "
            "FROM errorsink_event WHERE id <= 20000 ORDER BY code, item_type, id"
        )
        stored = cursor.fetchall()
    for values in stored:
        row = dict(zip((*_CHECKED, "build_id", "customer_context", "details"), values, strict=True))
        [again] = batch_rows([row["raw"].encode()], received_at=row["received_at"]).rows
        wrong = [name for name in _CHECKED if getattr(again, name) != row[name]]
        wrong += [name for name in ("customer_context", "details")
                  if _json(getattr(again, name)) != _json(row[name])]  # fmt: skip
        if again.build_id and again.build_id != row["build_id"]:
            wrong.append("build_id")
        if wrong or row["project_id"] not in project_ids:
            raise RuntimeError(f"generated row differs from ingest's in {wrong}: {row}")


def _json(text: str | None) -> object:
    return None if text is None else orjson.loads(text)
