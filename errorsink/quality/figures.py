"""The figures windows merge (docs/quality.md): per project, bucket (minute, hour, day) and
build, and per code and metric, written from each rollup chunk.

A chunk's events are grouped in SQL (counts, the distinct session ids of each group, the valid
metric values); each group becomes sketches here (errorsink/quality/sketches.py) and is merged
into the stored row of its key: counts and sums add, theta sketches unite, DDSketches merge.
Rows the rollups move out of a build (sign -1, see errorsink/quality/rollups.py) come off again:
counts and sums subtract, their sessions and values leave the sketches, and a row left with no
events is deleted. A session moves whole, so no other event of it stays in the build's sketch.
The chunk runs inside ``rollups_apply``'s transaction, which holds the rollup state's row lock,
so one writer at a time reads and rewrites a key, and a chunk is counted once or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from errorsink.quality.metrics import ALL_METRIC_RANGES
from errorsink.quality.models import MINUTE, MINUTE_ROWS_KEPT
from errorsink.quality.sketches import (
    sessions_count,
    sessions_sketch,
    sessions_union,
    sessions_without,
    values_dump,
    values_load,
    values_sketch,
    values_without,
)

# Every event has an hour and a day row, recent ones a minute row too.
_SPANS = (
    "CROSS JOIN LATERAL (VALUES ('m', c.minute), ('h', c.hour), ('d', c.day)) AS b(span, bucket)"
)

# A voice turn's spans (kind turn) are not events of the call: they make no session active
# (the latency figures count turns apart, errorsink/turns/figures.py).
_SESSION_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.build_id, c.sign,
       count(*), count(*) FILTER (WHERE c.kind = 'error'),
       count(*) FILTER (WHERE c.kind = 'warning'),
       coalesce(array_agg(c.session_id) FILTER (WHERE c.session_id <> ''), '{{}}'),
       coalesce(array_agg(c.session_id)
                FILTER (WHERE c.session_id <> '' AND c.degraded), '{{}}')
FROM rollup_chunk c {_SPANS}
WHERE b.bucket IS NOT NULL AND c.kind <> 'turn'
GROUP BY 1, 2, 3, 4, 5
"""

_CODE_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.kind, c.code, c.sip_code, c.build_id, c.sign, count(*),
       coalesce(array_agg(c.session_id) FILTER (WHERE c.session_id <> ''), '{{}}')
FROM rollup_chunk c {_SPANS}
WHERE b.bucket IS NOT NULL AND c.kind IN ('error', 'warning', 'termination', 'turn')
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""

# A warning's call-quality metrics and a turn's latencies (errorsink/turns/figures.py reads those).
_RANGES = ", ".join(f"('{name}', {low}, {high})" for name, (low, high) in ALL_METRIC_RANGES.items())
# CASE, not AND, guards the cast: SQL does not promise to evaluate a WHERE clause left to right.
_METRIC_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.code, c.build_id, r.metric, c.sign,
       array_agg(v.value::float8)
FROM rollup_chunk c {_SPANS}
CROSS JOIN (VALUES {_RANGES}) AS r(metric, low, high)
CROSS JOIN LATERAL (
    SELECT CASE WHEN jsonb_typeof(c.metrics -> r.metric) = 'number'
                THEN (c.metrics ->> r.metric)::numeric END AS value
) AS v
WHERE b.bucket IS NOT NULL AND c.metrics IS NOT NULL AND v.value BETWEEN r.low AND r.high
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

SESSION_KEY = ("project_id", "span", "bucket", "build_id")
CODE_KEY = ("project_id", "span", "bucket", "kind", "code", "sip_code", "build_id")
METRIC_KEY = ("project_id", "span", "bucket", "code", "build_id", "metric")
_KEY_TYPES = {"project_id": "uuid", "span": "text", "bucket": "timestamptz", "build_id": "text",
              "kind": "text", "code": "text", "sip_code": "int", "metric": "text"}  # fmt: skip


def figures_apply(cursor) -> None:
    """Merge the chunk in ``rollup_chunk`` into the three figure tables."""
    _merge(cursor, "errorsink_figure_sessions", SESSION_KEY,
           ("events", "errors", "warnings", "active", "degraded", "active_count",
            "degraded_count"), _SESSION_GROUPS, _session_row)  # fmt: skip
    _merge(cursor, "errorsink_figure_codes", CODE_KEY, ("count", "sessions", "session_count"),
           _CODE_GROUPS, _code_row)  # fmt: skip
    _merge(cursor, "errorsink_figure_metrics", METRIC_KEY,
           ("count", "total", "minimum", "maximum", "sketch"), _METRIC_GROUPS,
           _metric_row)  # fmt: skip


# A group's values: what the chunk adds to a row and what it takes off (None for neither).
Change = Sequence | None


def _session_row(added: Change, removed: Change, old: Change) -> tuple | None:
    events, errors, warnings = _counts(added, removed, old, 3)
    if events <= 0:
        return None
    active = _sessions(added, removed, old, 3)
    degraded = _sessions(added, removed, old, 4)
    return (events, errors, warnings, active, degraded, sessions_count(active)[0],
            sessions_count(degraded)[0])  # fmt: skip


def _code_row(added: Change, removed: Change, old: Change) -> tuple | None:
    (count,) = _counts(added, removed, old, 1)
    if count <= 0:
        return None
    sessions = _sessions(added, removed, old, 1)
    return count, sessions, sessions_count(sessions)[0]


def _metric_row(added: Change, removed: Change, old: Change) -> tuple | None:
    added_values = added[0] if added else []
    removed_values = removed[0] if removed else []
    count = len(added_values) - len(removed_values) + (old[0] if old else 0)
    if count <= 0:
        return None
    total = sum(added_values) - sum(removed_values) + (old[1] if old else 0.0)
    sketch = values_sketch(added_values)
    # The extremes only widen: a value taken out may have been one (a looser clamp, see reads).
    lows, highs = list(added_values), list(added_values)
    if old:
        sketch.merge(values_load(old[4]))
        lows.append(old[2])
        highs.append(old[3])
    if removed_values:
        sketch = values_without(sketch, removed_values)
    return count, total, min(lows), max(highs), values_dump(sketch)


def _counts(added: Change, removed: Change, old: Change, width: int) -> list[int]:
    totals = list(old[:width]) if old else [0] * width
    for change, sign in ((added, 1), (removed, -1)):
        if change:
            totals = [total + sign * value for total, value in zip(totals, change, strict=False)]
    return totals


def _sessions(added: Change, removed: Change, old: Change, at: int) -> bytes:
    """The sketch of the session ids at position ``at`` (the same in a stored row and a change):
    the stored one with the chunk's added and taken off."""
    if old and added:
        merged = sessions_union([old[at], sessions_sketch(added[at])])
    elif added:
        merged = sessions_sketch(added[at])
    else:
        merged = bytes(old[at])
    if removed and removed[at]:
        merged = sessions_without(merged, removed[at])
    return merged


def _merge(cursor, table: str, key: tuple[str, ...], values: tuple[str, ...], groups_sql: str,
           combine: Callable[[Change, Change, Change], tuple | None]) -> None:  # fmt: skip
    cursor.execute(groups_sql)
    groups: dict[tuple, dict[int, Sequence]] = {}
    for row in cursor.fetchall():
        groups.setdefault(tuple(row[: len(key)]), {})[row[len(key)]] = row[len(key) + 1 :]
    if not groups:
        return
    stored = _stored(cursor, table, key, values, list(groups))
    rows, gone = [], []
    for k, change in sorted(groups.items(), key=_order):
        row = combine(change.get(1), change.get(-1), stored.get(k))
        if row is not None:
            rows.append((*k, *row))
        elif k in stored:
            gone.append(k)
    _upsert(cursor, table, key, values, rows)
    _delete(cursor, table, key, gone)


def _upsert(cursor, table: str, key: tuple[str, ...], values: tuple[str, ...],
            rows: list[tuple]) -> None:  # fmt: skip
    if not rows:
        return
    columns = ", ".join(key + values)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in values)
    cursor.executemany(
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(key + values))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        rows,
    )


def _delete(cursor, table: str, key: tuple[str, ...], keys: list[tuple]) -> None:
    if keys:
        cursor.execute(f"DELETE FROM {table} WHERE {_keys_in(key)}", _key_arrays(key, keys))


def _order(item) -> tuple:
    return tuple(str(part) for part in item[0])


def _stored(cursor, table: str, key: tuple[str, ...], values: tuple[str, ...],
            keys: list[tuple]) -> dict[tuple, tuple]:  # fmt: skip
    """The stored rows of these keys, by key."""
    cursor.execute(
        f"SELECT {', '.join(key + values)} FROM {table} WHERE {_keys_in(key)}",
        _key_arrays(key, keys),
    )
    return {tuple(row[: len(key)]): row[len(key) :] for row in cursor.fetchall()}


def _keys_in(key: tuple[str, ...]) -> str:
    unnest = ", ".join(f"%s::{_KEY_TYPES[column]}[]" for column in key)
    return f"({', '.join(key)}) IN (SELECT * FROM unnest({unnest}))"


def _key_arrays(key: tuple[str, ...], keys: list[tuple]) -> list[list]:
    return [[k[i] for k in keys] for i in range(len(key))]


def _minute_rows_old(table: str) -> str:
    old = f"now() - interval '{MINUTE_ROWS_KEPT}'"
    return f"DELETE FROM {table} WHERE span = '{MINUTE}' AND bucket < {old}"


# The rollups' minute-row prune: one statement for the three tables.
MINUTE_ROWS_PRUNE = (
    f"WITH s AS ({_minute_rows_old('errorsink_figure_sessions')}), "
    f"c AS ({_minute_rows_old('errorsink_figure_codes')}) "
    f"{_minute_rows_old('errorsink_figure_metrics')}"
)
