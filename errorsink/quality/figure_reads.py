"""A project's quality figures for one window, merged from the figure tables
(errorsink/quality/figures.py), by the definitions of errorsink/quality/selectors.py: counts and
sums exact, distinct sessions from theta sketches (exact below 4,096) and p95 from DDSketches
(within 1 %).

What a window reads. A minute window (1 h) reads its minute rows. An hour window reads whole UTC
days from day rows and the hours before the first and after the last whole day from hour rows:
at 30 days that is 29 or 30 day rows and up to 47 hour rows per key, whatever the events. Per
bucket series (the chart) come from the rows of the window's own span.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from errorsink.catalog import lookup
from errorsink.quality.models import DAY, HOUR, MINUTE
from errorsink.quality.selectors import (
    BUCKET_NAMES,
    EXPECTED_CAUSES,
    custom_window,
    quality_window,
)
from errorsink.quality.sketches import (
    EXACT_BELOW,
    RELATIVE_ACCURACY,
    blob_percentile,
    sessions_count,
    sessions_union,
    values_merge,
)

# Two standard errors of a theta sketch with 4,096 nominal entries (1/sqrt(4096) = 1.6 %).
SESSIONS_WITHIN = 0.032


@dataclass
class Accuracy:
    """Whether every distinct-session count of an answer was exact."""

    sessions_exact: bool = True

    def count(self, sketches: list) -> int:
        count, exact = sessions_count(sessions_union(sketches))
        self.sessions_exact = self.sessions_exact and exact
        return count

    def out(self) -> dict:
        return {"sessions_exact": self.sessions_exact,
                "sessions_within": 0.0 if self.sessions_exact else SESSIONS_WITHIN,
                "p95_within": RELATIVE_ACCURACY}  # fmt: skip


@dataclass(frozen=True)
class Piece:
    span: str
    start: datetime
    end: datetime


def window_pieces(start: datetime, end: datetime, span: str) -> list[Piece]:
    """The rows [start, end) merges: see the module docstring. Bounds are bucket-aligned."""
    if span == MINUTE:
        return [Piece(MINUTE, start, end)]
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = midnight if midnight == start else midnight + timedelta(days=1)
    last_day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if first_day >= last_day:
        return [Piece(HOUR, start, end)]
    pieces = [Piece(HOUR, start, first_day)] if start < first_day else []
    pieces.append(Piece(DAY, first_day, last_day))
    if last_day < end:
        pieces.append(Piece(HOUR, last_day, end))
    return pieces


def _where(pieces: list[Piece], params: dict, prefix: str) -> str:
    """SQL selecting the pieces' rows (the parameters go into ``params``)."""
    parts = []
    for n, piece in enumerate(pieces):
        key = f"{prefix}{n}"
        params.update({f"{key}_span": piece.span, f"{key}_start": piece.start,
                       f"{key}_end": piece.end})  # fmt: skip
        parts.append(f"(span = %({key}_span)s AND bucket >= %({key}_start)s "
                     f"AND bucket < %({key}_end)s)")  # fmt: skip
    return "(" + " OR ".join(parts) + ")"


def _build_filter(params: dict) -> str:
    return "" if params["build"] is None else "AND build_id = %(build)s"


def project_quality(
    *, project_id: object, window: str = "24h", build_id: str | None = None,
    now: datetime | None = None, since: datetime | None = None, until: datetime | None = None,
) -> dict:  # fmt: skip
    """The figures of a named window, or of the custom range [since, until) when both are given
    (checked by ``custom_range_problems``)."""
    if since is not None and until is not None:
        span = custom_window(since, until, now=now)
    else:
        span = quality_window(window, now=now)
    params = {"project": project_id, "build": build_id}
    current = window_pieces(span.start, span.end, span.span)
    previous = window_pieces(span.previous_start, span.start, span.span)
    accuracy = Accuracy()
    (overall, builds), (before, _) = _sessions(params, current, previous, span, accuracy)
    warnings, errors, terminations = _codes(params, current, span.span, overall["active"],
                                            accuracy)  # fmt: skip
    metrics = _metrics(params, current)
    for warning in warnings:
        warning["metrics"] = metrics.get(warning["code"], {})
    return {
        "project_id": str(project_id),
        "window": {
            "name": span.name,
            "start": span.start,
            "end": span.end,
            "bucket": BUCKET_NAMES[span.span],
        },  # fmt: skip
        "build_id": build_id,
        "sessions": overall,
        "previous": {"start": span.previous_start, "end": span.start, "sessions": before},
        "warnings": warnings,
        "terminations": terminations,
        "errors": errors,
        "builds": builds,
        "accuracy": accuracy.out(),
    }


def _sessions(params: dict, current: list[Piece], previous: list[Piece], span, accuracy: Accuracy):
    """Active and degraded sessions of the window, overall and per build, and of the previous
    window overall, in one read: every row of the previous window is before the window starts."""
    params["window_start"] = span.start
    where = _where(current + previous, params, "s")
    sql = f"""
    SELECT bucket >= %(window_start)s, build_id, errors, active, degraded
    FROM errorsink_figure_sessions
    WHERE project_id = %(project)s AND {where} {_build_filter(params)}
    """
    rows = {True: [], False: []}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for in_window, *row in cursor:
            rows[in_window].append(row)
    window = _sessions_of(rows[True], accuracy)
    builds = _builds(params, current, span.span, accuracy, rows[True]) if rows[True] else []
    return (window, builds), (_sessions_of(rows[False], accuracy), [])


def _sessions_of(rows: list, accuracy: Accuracy) -> dict:
    if not rows:
        return _share(0, 0)
    return _share(accuracy.count([row[2] for row in rows]),
                  accuracy.count([row[3] for row in rows]))  # fmt: skip


def _builds(params: dict, pieces: list[Piece], span: str, accuracy: Accuracy, rows: list):
    errors, active, degraded = defaultdict(int), defaultdict(list), defaultdict(list)
    for build, build_errors, build_active, build_degraded in rows:
        errors[build] += build_errors
        active[build].append(build_active)
        degraded[build].append(build_degraded)
    first_seen = _first_buckets(params, pieces, span)
    builds = [
        _build_row(
            build,
            accuracy.count(active[build]),
            accuracy.count(degraded[build]),
            errors[build],
            first_seen.get(build),
        )  # fmt: skip
        for build in active
    ]
    builds = [row for row in builds if row["sessions"] or row["errors"]]
    builds.sort(key=lambda row: (-row["sessions"], row["build_id"]))
    return builds


def _first_buckets(params: dict, pieces: list[Piece], span: str) -> dict[str, datetime]:
    """Each build's first bucket of the window's own span (hours for day pieces too)."""
    own = [Piece(span if piece.span == DAY else piece.span, piece.start, piece.end)
           for piece in pieces]  # fmt: skip
    sql = f"""
    SELECT build_id, min(bucket) FROM errorsink_figure_sessions
    WHERE project_id = %(project)s AND {_where(own, params, "f")} {_build_filter(params)}
    GROUP BY build_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _codes(params: dict, pieces: list[Piece], span: str, active: int, accuracy: Accuracy):
    """Warnings (with their series), errors and terminations of the pieces."""
    sql = f"""
    SELECT kind, code, sip_code, count, sessions FROM errorsink_figure_codes
    WHERE project_id = %(project)s AND {_where(pieces, params, "c")} {_build_filter(params)}
    """
    counts, sketches = defaultdict(int), defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, code, sip_code, count, sessions in cursor:
            counts[(kind, code, sip_code)] += count
            sketches[(kind, code, sip_code)].append(sessions)
    series = _series(params, pieces, span, accuracy)
    warnings, errors, terminations = [], [], []
    for (kind, code, sip_code), count in counts.items():
        sessions = accuracy.count(sketches[(kind, code, sip_code)])
        if kind == "warning":
            row = _code_row(code, count, sessions, sdk="telnyx")
            row["session_share"] = sessions / active if active else 0.0
            row["series"] = series.get(code, [])
            warnings.append(row)
        elif kind == "error":
            errors.append(_code_row(code, count, sessions))
        else:
            terminations.append({"cause": code, "sip_code": sip_code or None, "count": count,
                                 "sessions": sessions,
                                 "expected": code in EXPECTED_CAUSES})  # fmt: skip
    by_count = lambda row: (-row["count"], row["code"])  # noqa: E731
    terminations.sort(key=lambda row: (-row["sessions"], row["cause"], row["sip_code"] or 0))
    return sorted(warnings, key=by_count), sorted(errors, key=by_count), terminations


def _series(
    params: dict, pieces: list[Piece], span: str, accuracy: Accuracy
) -> dict[str, list[dict]]:
    """Per warning code, its buckets of the window's span: counts, and sessions added up over
    the bucket's builds. They add because the rollups keep every event of a session under the
    session's one build (errorsink/quality/rollups.py, "Builds"), so no session is in two
    builds' rows; a row's count is exact below the sketch's nominal entries."""
    window = [Piece(span, pieces[0].start, pieces[-1].end)]
    sql = f"""
    SELECT code, bucket, sum(count)::bigint, sum(session_count)::bigint,
           bool_and(session_count < {EXACT_BELOW})
    FROM errorsink_figure_codes
    WHERE project_id = %(project)s AND kind = 'warning' AND {_where(window, params, "w")}
      {_build_filter(params)}
    GROUP BY code, bucket ORDER BY code, bucket
    """
    series: dict[str, list[dict]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, bucket, count, sessions, exact in cursor:
            accuracy.sessions_exact = accuracy.sessions_exact and exact
            series[code].append({"start": bucket, "count": count, "sessions": sessions})
    return series


def _metrics(params: dict, pieces: list[Piece]) -> dict[str, dict[str, dict]]:
    sql = f"""
    SELECT code, metric, count, total, minimum, maximum, sketch FROM errorsink_figure_metrics
    WHERE project_id = %(project)s AND {_where(pieces, params, "m")} {_build_filter(params)}
    """
    counts, totals, sketches = defaultdict(int), defaultdict(float), defaultdict(list)
    lows, highs = {}, {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, metric, count, total, low, high, sketch in cursor:
            key = (code, metric)
            counts[key] += count
            totals[key] += total
            lows[key], highs[key] = min(lows.get(key, low), low), max(highs.get(key, high), high)
            sketches[key].append(sketch)
    metrics: dict[str, dict[str, dict]] = {}
    for (code, metric), count in counts.items():
        p95 = blob_percentile(values_merge(sketches[(code, metric)]), 0.95)
        p95 = min(max(p95, lows[(code, metric)]), highs[(code, metric)])
        average = totals[(code, metric)] / count
        metrics.setdefault(code, {})[metric] = {"count": count, "avg": average, "p95": p95}
    return metrics


def _build_row(
    build_id: str, active: int, degraded: int, errors: int, first_seen: datetime
) -> dict:
    return {
        "build_id": build_id,
        "first_seen": first_seen,
        "sessions": active,
        "degraded": degraded,
        "degraded_share": degraded / active if active else 0.0,
        "errors": errors,
        "errors_per_session": errors / active if active else 0.0,
    }


def _share(active: int, degraded: int) -> dict:
    return {"active": active, "degraded": degraded,
            "degraded_share": degraded / active if active else 0.0}  # fmt: skip


def _code_row(code: str, count: int, sessions: int, sdk: str | None = None) -> dict:
    info = lookup(code, sdk=sdk)
    return {"code": code, "name": info.name if info else code, "count": count,
            "sessions": sessions}  # fmt: skip
