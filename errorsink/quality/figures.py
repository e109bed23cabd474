"""The figures windows merge (docs/quality.md): per project, bucket (minute, hour, day) and
build, and per code and metric, written from each rollup chunk.

A chunk's events are grouped in SQL (counts, the distinct session ids of each group, the valid
metric values); each group becomes sketches here (errorsink/quality/sketches.py) and is merged
into the stored row of its key: counts and sums add, theta sketches unite, DDSketches merge.
The chunk runs inside ``rollups_apply``'s transaction, which holds the rollup state's row lock,
so one writer at a time reads and rewrites a key, and a chunk is counted once or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from errorsink.quality.metrics import METRIC_RANGES
from errorsink.quality.models import MINUTE, MINUTE_ROWS_KEPT
from errorsink.quality.sketches import (
    sessions_count,
    sessions_sketch,
    sessions_union,
    values_dump,
    values_load,
    values_sketch,
)

# Every event has an hour and a day row, recent ones a minute row too.
_SPANS = (
    "CROSS JOIN LATERAL (VALUES ('m', c.minute), ('h', c.hour), ('d', c.day)) AS b(span, bucket)"
)

_SESSION_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.build_id,
       count(*), count(*) FILTER (WHERE c.kind = 'error'),
       count(*) FILTER (WHERE c.kind = 'warning'),
       coalesce(array_agg(c.session_id) FILTER (WHERE c.session_id <> ''), '{{}}'),
       coalesce(array_agg(c.session_id)
                FILTER (WHERE c.session_id <> '' AND c.degraded), '{{}}')
FROM rollup_chunk c {_SPANS}
WHERE b.bucket IS NOT NULL
GROUP BY 1, 2, 3, 4
"""

_CODE_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.kind, c.code, c.sip_code, c.build_id, count(*),
       coalesce(array_agg(c.session_id) FILTER (WHERE c.session_id <> ''), '{{}}')
FROM rollup_chunk c {_SPANS}
WHERE b.bucket IS NOT NULL AND c.kind IN ('error', 'warning', 'termination')
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

_RANGES = ", ".join(f"('{name}', {low}, {high})" for name, (low, high) in METRIC_RANGES.items())
# CASE, not AND, guards the cast: SQL does not promise to evaluate a WHERE clause left to right.
_METRIC_GROUPS = f"""
SELECT c.project_id, b.span, b.bucket, c.code, c.build_id, r.metric,
       array_agg(v.value::float8)
FROM rollup_chunk c {_SPANS}
CROSS JOIN (VALUES {_RANGES}) AS r(metric, low, high)
CROSS JOIN LATERAL (
    SELECT CASE WHEN jsonb_typeof(c.metrics -> r.metric) = 'number'
                THEN (c.metrics ->> r.metric)::numeric END AS value
) AS v
WHERE b.bucket IS NOT NULL AND c.metrics IS NOT NULL AND v.value BETWEEN r.low AND r.high
GROUP BY 1, 2, 3, 4, 5, 6
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


def _session_row(new: Sequence, old: Sequence | None) -> tuple:
    events, errors, warnings, active, degraded = new
    active, degraded = sessions_sketch(active), sessions_sketch(degraded)
    if old is not None:
        events, errors, warnings = events + old[0], errors + old[1], warnings + old[2]
        active, degraded = sessions_union([old[3], active]), sessions_union([old[4], degraded])
    return (events, errors, warnings, active, degraded, sessions_count(active)[0],
            sessions_count(degraded)[0])  # fmt: skip


def _code_row(new: Sequence, old: Sequence | None) -> tuple:
    count, sessions = new
    sessions = sessions_sketch(sessions)
    if old is not None:
        count, sessions = count + old[0], sessions_union([old[1], sessions])
    return count, sessions, sessions_count(sessions)[0]


def _metric_row(new: Sequence, old: Sequence | None) -> tuple:
    (values,) = new
    sketch = values_sketch(values)
    count, total, low, high = len(values), sum(values), min(values), max(values)
    if old is not None:
        sketch.merge(values_load(old[4]))
        count, total = count + old[0], total + old[1]
        low, high = min(low, old[2]), max(high, old[3])
    return count, total, low, high, values_dump(sketch)


def _merge(cursor, table: str, key: tuple[str, ...], values: tuple[str, ...], groups_sql: str,
           combine: Callable[[Sequence, Sequence | None], tuple]) -> None:  # fmt: skip
    cursor.execute(groups_sql)
    groups = {tuple(row[: len(key)]): row[len(key) :] for row in cursor.fetchall()}
    if not groups:
        return
    stored = _stored(cursor, table, key, values, list(groups))
    rows = [(*k, *combine(new, stored.get(k))) for k, new in sorted(groups.items(), key=_order)]
    columns = ", ".join(key + values)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in values)
    cursor.executemany(
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(key + values))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        rows,
    )


def _order(item) -> tuple:
    return tuple(str(part) for part in item[0])


def _stored(cursor, table: str, key: tuple[str, ...], values: tuple[str, ...],
            keys: list[tuple]) -> dict[tuple, tuple]:  # fmt: skip
    """The stored rows of these keys, by key."""
    arrays = [[k[i] for k in keys] for i in range(len(key))]
    unnest = ", ".join(f"%s::{_KEY_TYPES[column]}[]" for column in key)
    cursor.execute(
        f"SELECT {', '.join(key + values)} FROM {table} "
        f"WHERE ({', '.join(key)}) IN (SELECT * FROM unnest({unnest}))",
        arrays,
    )
    return {tuple(row[: len(key)]): row[len(key) :] for row in cursor.fetchall()}


def _minute_rows_old(table: str) -> str:
    old = f"now() - interval '{MINUTE_ROWS_KEPT}'"
    return f"DELETE FROM {table} WHERE span = '{MINUTE}' AND bucket < {old}"


# The rollups' minute-row prune: one statement for the three tables.
MINUTE_ROWS_PRUNE = (
    f"WITH s AS ({_minute_rows_old('errorsink_figure_sessions')}), "
    f"c AS ({_minute_rows_old('errorsink_figure_codes')}) "
    f"{_minute_rows_old('errorsink_figure_metrics')}"
)
