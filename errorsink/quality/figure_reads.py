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

import pickle
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import connection
from django.utils import timezone

from errorsink.catalog import lookup
from errorsink.quality.metrics import METRIC_RANGES
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

    def count(self, sketch: bytes | None) -> int:
        if sketch is None:
            return 0
        count, exact = sessions_count(sketch)
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
    now = now or timezone.now()
    if since is not None and until is not None:
        span = custom_window(since, until, now=now)
    else:
        span = quality_window(window, now=now)
    params = {"project": project_id, "build": build_id}
    merged = _window_merged(params, span, _day_floor(now))
    accuracy = Accuracy()
    active = _sessions_of(merged.active, merged.degraded, accuracy)
    return {
        "project_id": str(project_id),
        "window": {
            "name": span.name,
            "start": span.start,
            "end": span.end,
            "bucket": BUCKET_NAMES[span.span],
        },  # fmt: skip
        "build_id": build_id,
        "sessions": active,
        "previous": {
            "start": span.previous_start,
            "end": span.start,
            "sessions": _sessions_of(*merged.previous, accuracy),
        },
        "warnings": _warnings(merged, active["active"], accuracy),
        "terminations": _terminations(merged, accuracy),
        "errors": _errors(merged, accuracy),
        "builds": _builds(merged, accuracy),
        "accuracy": accuracy.out(),
    }


# ---------------------------------------------------------------------------------------------
# A window's rows, merged: counts added, sketches united, per key.


@dataclass
class Merged:
    """What a stretch of a window adds up to, ready to merge with the next stretch."""

    builds: dict = field(default_factory=dict)  # build: [errors, active, degraded sketches]
    first_seen: dict = field(default_factory=dict)  # build: first bucket
    previous: list = field(default_factory=lambda: [None, None])  # active, degraded sketches
    codes: dict = field(default_factory=dict)  # (kind, code, sip_code): [count, sessions sketch]
    series: dict = field(default_factory=dict)  # code: [points (answer's dicts), all exact]
    metrics: dict = field(default_factory=dict)  # (code, metric): [count, sum, min, max, sketch]

    @property
    def active(self) -> bytes | None:
        return _union(row[1] for row in self.builds.values())

    @property
    def degraded(self) -> bytes | None:
        return _union(row[2] for row in self.builds.values())

    def then(self, later: Merged) -> Merged:
        """This stretch followed by ``later``: per key, counts added and sketches united."""
        return Merged(
            builds=_joined(self.builds, later.builds, lambda a, b: [
                a[0] + b[0], _union([a[1], b[1]]), _union([a[2], b[2]])]),
            first_seen=_joined(self.first_seen, later.first_seen, lambda a, b: a),
            previous=[_union(pair) for pair in zip(self.previous, later.previous, strict=True)],
            codes=_joined(self.codes, later.codes, lambda a, b: [
                a[0] + b[0], _union([a[1], b[1]])]),
            series=_joined(self.series, later.series, lambda a, b: [a[0] + b[0], a[1] and b[1]]),
            metrics=_joined(self.metrics, later.metrics, lambda a, b: [
                a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]),
                values_merge([a[4], b[4]])]),
        )  # fmt: skip


def _joined(earlier: dict, later: dict, join) -> dict:
    """Both dicts' keys; a key in both takes ``join(earlier's, later's)``. The values are shared,
    never changed: a kept stretch's own are among them (see ``_kept``)."""
    joined = dict(earlier)
    for key, value in later.items():
        joined[key] = join(earlier[key], value) if key in earlier else value
    return joined


def _sketch_cursor():
    """A cursor whose rows come in PostgreSQL's binary format: the reads that fetch sketches
    (hundreds of kilobytes) then skip hex-encoding and decoding them, which halved their
    fetch. Django's cursors ask for text; this one goes through Django's wrapper all the
    same, so it is counted and logged like any other query."""
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    cursor.format = psycopg.pq.Format.BINARY
    return connection._prepare_cursor(cursor)  # the wrapper Django puts on its own cursors


def _union(sketches) -> bytes | None:
    present = [sketch for sketch in sketches if sketch is not None]
    if not present:
        return None
    return bytes(present[0]) if len(present) == 1 else sessions_union(present)


def _rows_merged(params: dict, pieces: list[Piece], previous: list[Piece], span: str) -> Merged:
    """The pieces' rows (and the previous window's session rows), merged."""
    merged = Merged()
    if pieces or previous:
        _sessions(merged, params, pieces, previous, pieces[0].start if pieces else None)
    if pieces:
        merged.first_seen = _first_buckets(params, pieces, span)
        _codes(merged, params, pieces)
        merged.series = _series(params, pieces, span)
        _metrics(merged, params, pieces)
    return merged


def _sessions(merged: Merged, params: dict, pieces, previous, window_start) -> None:
    """Session rows per build, and the previous window's, in one read: every row of the
    previous window is before the window starts."""
    params["window_start"] = window_start or previous[-1].end
    sql = f"""
    SELECT bucket >= %(window_start)s, build_id, errors, active, degraded
    FROM errorsink_figure_sessions
    WHERE project_id = %(project)s AND {_where(pieces + previous, params, "s")}
      {_build_filter(params)}
    """
    builds, before = defaultdict(lambda: [0, [], []]), [[], []]
    with _sketch_cursor() as cursor:
        cursor.execute(sql, params)
        for in_window, build, errors, active, degraded in cursor:
            if in_window:
                row = builds[build]
                row[0] += errors
                row[1].append(active)
                row[2].append(degraded)
            else:
                before[0].append(active)
                before[1].append(degraded)
    merged.builds = {build: [errors, _union(active), _union(degraded)]
                     for build, (errors, active, degraded) in builds.items()}  # fmt: skip
    merged.previous = [_union(before[0]), _union(before[1])]


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


def _codes(merged: Merged, params: dict, pieces: list[Piece]) -> None:
    sql = f"""
    SELECT kind, code, sip_code, count, sessions FROM errorsink_figure_codes
    WHERE project_id = %(project)s AND {_where(pieces, params, "c")} {_build_filter(params)}
    """
    counts, sketches = defaultdict(int), defaultdict(list)
    with _sketch_cursor() as cursor:
        cursor.execute(sql, params)
        for kind, code, sip_code, count, sessions in cursor:
            counts[(kind, code, sip_code)] += count
            sketches[(kind, code, sip_code)].append(sessions)
    merged.codes = {key: [count, _union(sketches[key])] for key, count in counts.items()}


def _series(params: dict, pieces: list[Piece], span: str) -> dict[str, list]:
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
    series: dict[str, list] = defaultdict(lambda: [[], True])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, bucket, count, sessions, exact in cursor:
            points = series[code]
            points[0].append({"start": bucket, "count": count, "sessions": sessions})
            points[1] = points[1] and exact
    return dict(series)


def _metrics(merged: Merged, params: dict, pieces: list[Piece]) -> None:
    sql = f"""
    SELECT code, metric, count, total, minimum, maximum, sketch FROM errorsink_figure_metrics
    WHERE project_id = %(project)s AND {_where(pieces, params, "m")} {_build_filter(params)}
      AND metric IN ({", ".join(f"'{name}'" for name in METRIC_RANGES)})
    """
    rows: dict[tuple, list] = {}
    sketches = defaultdict(list)
    with _sketch_cursor() as cursor:
        cursor.execute(sql, params)
        for code, metric, count, total, low, high, sketch in cursor:
            row = rows.setdefault((code, metric), [0, 0.0, low, high, None])
            row[0] += count
            row[1] += total
            row[2], row[3] = min(row[2], low), max(row[3], high)
            sketches[(code, metric)].append(sketch)
    for key, row in rows.items():
        row[4] = values_merge(sketches[key])
    merged.metrics = rows


# ---------------------------------------------------------------------------------------------
# Closed days. The rows of buckets before today (UTC) change only when late events or a
# session's move reach them, and the rollups bump the project's figure version when they do
# (errorsink/quality/rollups.py). So what a window merged from them is kept
# (``FigureStretch``) under that version, and a read merges it with today's rows only: today's
# day row (one per key) when no event lies after the window's end, else today's hours.


def _window_merged(params: dict, span, today: datetime) -> Merged:
    if span.span == MINUTE or span.start >= today:
        return _rows_merged(params, window_pieces(span.start, span.end, span.span),
                            window_pieces(span.previous_start, span.start, span.span),
                            span.span)  # fmt: skip
    closed = _closed_merged(params, span, min(span.end, today))
    if span.end <= today:
        return closed
    return closed.then(_rows_merged(params, _today_pieces(params, today, span.end), [], HOUR))


def _closed_merged(params: dict, span, end: datetime) -> Merged:
    """The window's stretch before ``end`` (today's midnight or the window's end) and the whole
    previous window, kept or merged now."""
    bounds = (span.previous_start, span.start, end)
    key = "|".join([STRETCH_FORMAT, span.span, *(moment.isoformat() for moment in bounds),
                    repr(params["build"])])  # fmt: skip
    with _kept_lock:
        held_version, held = _kept.get((params["project"], key), (None, None))
    with _sketch_cursor() as cursor:
        cursor.execute(_STRETCH_READ, {"project": params["project"], "key": key,
                                       "held": held_version})  # fmt: skip
        version, kept_version, kept, database_today = cursor.fetchone()
    if end > database_today:  # this clock runs ahead: "before today" is not closed yet
        return _stretch_rows(params, span, end)
    if kept_version == version:
        if held_version == version:
            return held
        if kept is not None:
            return _keep(params["project"], key, version, pickle.loads(kept))  # noqa: S301
    merged = _stretch_rows(params, span, end)
    with connection.cursor() as cursor:
        blob = pickle.dumps(merged)  # read back above only: never from users
        cursor.execute(_STRETCH_WRITE, {"project": params["project"], "key": key,
                                        "version": version, "merged": blob})  # fmt: skip
    return _keep(params["project"], key, version, merged)


def _stretch_rows(params: dict, span, end: datetime) -> Merged:
    return _rows_merged(params, window_pieces(span.start, end, span.span),
                        window_pieces(span.previous_start, span.start, span.span),
                        span.span)  # fmt: skip


# Part of every stretch's key: a change to ``Merged`` (or its module's name) must change it, so
# that no stretch pickled before is read back.
STRETCH_FORMAT = "m3"
# The last stretches this process read, unpickled, by (project, key): a read whose version
# matches skips fetching and unpickling (1.3 MB and 12 ms at 30 days, a million events).
_kept: OrderedDict[tuple, tuple[int, Merged]] = OrderedDict()
KEPT_IN_PROCESS = 16


_kept_lock = threading.Lock()  # reads may run on several threads of one process


def _keep(project_id: object, key: str, version: int, merged: Merged) -> Merged:
    with _kept_lock:
        _kept[(project_id, key)] = (version, merged)
        _kept.move_to_end((project_id, key))
        while len(_kept) > KEPT_IN_PROCESS:
            _kept.popitem(last=False)
    return merged


def _today_pieces(params: dict, today: datetime, end: datetime) -> list[Piece]:
    """Today's day row stands for [today, end) when no event of today lies after ``end``."""
    sql = f"""
    SELECT EXISTS (SELECT 1 FROM errorsink_figure_sessions
                   WHERE project_id = %(project)s AND span = 'h' AND bucket >= %(end)s
                     AND bucket < %(tomorrow)s {_build_filter(params)})
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "end": end, "tomorrow": today + timedelta(days=1)})
        if cursor.fetchone()[0]:
            return [Piece(HOUR, today, end)]
    return [Piece(DAY, today, today + timedelta(days=1))]


# The stretch itself only when this process does not hold that version of it already.
_STRETCH_READ = """
SELECT coalesce(v.version, 0), s.version,
       CASE WHEN s.version IS DISTINCT FROM %(held)s THEN s.merged END,
       date_trunc('day', now(), 'UTC')
FROM (SELECT %(project)s::uuid AS project_id) AS p
LEFT JOIN errorsink_figure_version v ON v.project_id = p.project_id
LEFT JOIN errorsink_figure_stretch s ON s.project_id = p.project_id AND s.key = %(key)s
"""
_STRETCH_WRITE = """
INSERT INTO errorsink_figure_stretch (project_id, key, version, merged, made_at)
SELECT id, %(key)s, %(version)s, %(merged)s, now() FROM errorsink_project WHERE id = %(project)s
ON CONFLICT (project_id, key) DO UPDATE
SET version = EXCLUDED.version, merged = EXCLUDED.merged, made_at = EXCLUDED.made_at
"""


def _day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------
# The answer's parts, from the merged window.


def _sessions_of(active: bytes | None, degraded: bytes | None, accuracy: Accuracy) -> dict:
    return _share(accuracy.count(active), accuracy.count(degraded))


def _builds(merged: Merged, accuracy: Accuracy) -> list[dict]:
    builds = [
        _build_row(
            build,
            accuracy.count(active),
            accuracy.count(degraded),
            errors,
            merged.first_seen.get(build),
        )  # fmt: skip
        for build, (errors, active, degraded) in merged.builds.items()
    ]
    builds = [row for row in builds if row["sessions"] or row["errors"]]
    builds.sort(key=lambda row: (-row["sessions"], row["build_id"]))
    return builds


def _warnings(merged: Merged, active: int, accuracy: Accuracy) -> list[dict]:
    metrics: dict[str, dict[str, dict]] = defaultdict(dict)
    for (code, metric), (count, total, low, high, sketch) in merged.metrics.items():
        p95 = min(max(blob_percentile(sketch, 0.95), low), high)
        metrics[code][metric] = {"count": count, "avg": total / count, "p95": p95}
    warnings = []
    for (kind, code, _), (count, sketch) in merged.codes.items():
        if kind != "warning":
            continue
        row = _code_row(code, count, accuracy.count(sketch), sdk="telnyx")
        row["session_share"] = row["sessions"] / active if active else 0.0
        row["metrics"] = metrics.get(code, {})
        # The points may be a kept stretch's own (see _kept): shared, never changed.
        row["series"], exact = merged.series.get(code, [[], True])
        accuracy.sessions_exact = accuracy.sessions_exact and exact
        warnings.append(row)
    return sorted(warnings, key=_by_count)


def _errors(merged: Merged, accuracy: Accuracy) -> list[dict]:
    errors = [_code_row(code, count, accuracy.count(sketch))
              for (kind, code, _), (count, sketch) in merged.codes.items()
              if kind == "error"]  # fmt: skip
    return sorted(errors, key=_by_count)


def _terminations(merged: Merged, accuracy: Accuracy) -> list[dict]:
    terminations = [
        {
            "cause": code,
            "sip_code": sip_code or None,
            "count": count,
            "sessions": accuracy.count(sketch),
            "expected": code in EXPECTED_CAUSES,
        }  # fmt: skip
        for (kind, code, sip_code), (count, sketch) in merged.codes.items()
        if kind == "termination"
    ]
    terminations.sort(key=lambda row: (-row["sessions"], row["cause"], row["sip_code"] or 0))
    return terminations


def _by_count(row: dict) -> tuple:
    return (-row["count"], row["code"])


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
