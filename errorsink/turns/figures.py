"""A project's latency figures for one window (docs/turns.md, "Latency figures"), merged from
the quality rollups' figure tables: the rollups count each turn span under its code (``turn``,
``stt``...) in ``errorsink_figure_codes`` and keep its valid latencies in
``errorsink_figure_metrics`` (DDSketches, 1 % relative accuracy), per bucket and build, like a
warning's metrics. A window reads day rows for its whole days and hour (or minute) rows for the
rest (errorsink/quality/figure_reads.py, ``window_pieces``), whatever the number of turns.

The slowest turns are the only figure read from the events themselves: the ten turns of the
window with the longest voice-to-voice, from the index ``event_turn_slowest``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from errorsink.quality.figure_reads import Piece, window_pieces
from errorsink.quality.metrics import TURN_METRIC_RANGES
from errorsink.quality.selectors import BUCKET_NAMES, custom_window, quality_window
from errorsink.quality.sketches import RELATIVE_ACCURACY, blob_percentile, values_merge
from errorsink.sessions.models import Event, voice_to_voice

METRICS = tuple(TURN_METRIC_RANGES)
VOICE_TO_VOICE = "voice_to_voice_ms"
SLOWEST = 10
# A build is compared with the build before it only with enough turns behind both figures,
# and marked slower when its voice-to-voice p95 is both 20 % and 200 ms above that build's.
BUILD_MIN_TURNS = 20
SLOWER_RATIO, SLOWER_MS = 1.2, 200.0


def project_latency(*, project_id: object, window: str = "24h", build_id: str | None = None,
                    now: datetime | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> dict:  # fmt: skip
    """The figures of a named window, or of the custom range [since, until) when both are
    given (checked by ``custom_range_problems``), as the quality figures take them."""
    now = now or timezone.now()
    if since is not None and until is not None:
        span = custom_window(since, until, now=now)
    else:
        span = quality_window(window, now=now)
    pieces = window_pieces(span.start, span.end, span.span)
    params = {"project": project_id, "build": build_id}
    counts = _turn_counts(params, pieces)
    # A project that sends no turns pays one read for the panel, not three.
    metrics = _metrics(params, pieces) if counts else {}
    overall = _figures(_merged(metrics.values()))
    return {
        "project_id": str(project_id),
        "window": {
            "name": span.name,
            "start": span.start,
            "end": span.end,
            "bucket": BUCKET_NAMES[span.span],
        },  # fmt: skip
        "build_id": build_id,
        "turns": sum(count for count, _ in counts.values()),
        **overall,
        "builds": _builds(metrics, counts),
        "slowest": _slowest(params, span.start, span.end) if counts else [],
        "accuracy": {"percentiles_within": RELATIVE_ACCURACY},
    }


def _where(pieces: list[Piece], params: dict) -> str:
    parts = []
    for n, piece in enumerate(pieces):
        params.update({f"p{n}_span": piece.span, f"p{n}_start": piece.start,
                       f"p{n}_end": piece.end})  # fmt: skip
        parts.append(f"(span = %(p{n}_span)s AND bucket >= %(p{n}_start)s "
                     f"AND bucket < %(p{n}_end)s)")  # fmt: skip
    build = "" if params["build"] is None else " AND build_id = %(build)s"
    return f"project_id = %(project)s AND ({' OR '.join(parts)}){build}"


def _metrics(params: dict, pieces: list[Piece]) -> dict[str, dict[str, list]]:
    """Per build, per metric: [count, total, minimum, maximum, sketches]."""
    sql = f"""
    SELECT build_id, metric, count, total, minimum, maximum, sketch
    FROM errorsink_figure_metrics
    WHERE {_where(pieces, params)} AND metric IN ({", ".join(f"'{m}'" for m in METRICS)})
    """
    builds: dict[str, dict[str, list]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for build, metric, count, total, low, high, sketch in cursor:
            row = builds[build].setdefault(metric, [0, 0.0, low, high, []])
            row[0] += count
            row[1] += total
            row[2], row[3] = min(row[2], low), max(row[3], high)
            row[4].append(bytes(sketch))
    return builds


def _turn_counts(params: dict, pieces: list[Piece]) -> dict[str, tuple[int, datetime]]:
    """Per build: its turns in the window and its first bucket with one."""
    sql = f"""
    SELECT build_id, sum(count)::bigint, min(bucket) FROM errorsink_figure_codes
    WHERE {_where(pieces, params)} AND kind = 'turn' AND code = 'turn'
    GROUP BY build_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {build: (count, first) for build, count, first in cursor.fetchall()}


def _merged(per_build) -> dict[str, list]:
    merged: dict[str, list] = {}
    for metrics in per_build:
        for metric, (count, total, low, high, sketches) in metrics.items():
            row = merged.setdefault(metric, [0, 0.0, low, high, []])
            row[0] += count
            row[1] += total
            row[2], row[3] = min(row[2], low), max(row[3], high)
            row[4].extend(sketches)
    return merged


def _figures(metrics: dict[str, list]) -> dict:
    """Voice-to-voice, and each stage, as count, mean, p50 and p95 (null without values)."""
    figures = {name: _percentiles(metrics.get(name)) for name in METRICS}
    voice = figures.pop(VOICE_TO_VOICE)
    return {"voice_to_voice": voice, "stages": figures}


def _percentiles(row: list | None) -> dict:
    if row is None or row[0] == 0:
        return {"count": 0, "avg": None, "p50": None, "p95": None}
    count, total, low, high, sketches = row
    merged = values_merge(sketches)

    def at(fraction: float) -> float:  # never outside the exact extremes
        return round(min(max(blob_percentile(merged, fraction), low), high), 1)

    return {"count": count, "avg": round(total / count, 1), "p50": at(0.5), "p95": at(0.95)}


def _builds(metrics: dict[str, dict], counts: dict[str, tuple[int, datetime]]) -> list[dict]:
    """Per build, newest first; each named build marked when clearly slower than the named
    build that first had turns before it (with BUILD_MIN_TURNS behind both)."""
    rows = []
    for build in set(metrics) | set(counts):
        turns, first = counts.get(build, (0, None))
        rows.append({"build_id": build, "first_seen": first, "turns": turns,
                     **_figures(metrics.get(build, {})), "slower_than": None})  # fmt: skip
    named = sorted((row for row in rows if row["build_id"] and row["first_seen"]),
                   key=lambda row: (row["first_seen"], row["build_id"]))  # fmt: skip
    before = None
    for row in named:
        if before is not None and _clearly_slower(row, before):
            row["slower_than"] = before["build_id"]
        if row["turns"] >= BUILD_MIN_TURNS and row["voice_to_voice"]["p95"] is not None:
            before = row
    others = [row for row in rows if row not in named]
    return list(reversed(named)) + others


def _clearly_slower(row: dict, before: dict) -> bool:
    p95, earlier = row["voice_to_voice"]["p95"], before["voice_to_voice"]["p95"]
    if row["turns"] < BUILD_MIN_TURNS or p95 is None or earlier is None:
        return False
    return p95 >= max(earlier * SLOWER_RATIO, earlier + SLOWER_MS)


def _slowest(params: dict, start: datetime, end: datetime) -> list[dict]:
    turns = (
        Event.objects.filter(
            project_id=params["project"],
            kind=Event.TURN,
            code="turn",
            occurred_at__gte=start,
            occurred_at__lt=end,
            details__metrics__has_key=VOICE_TO_VOICE,
        )  # fmt: skip
        .order_by(voice_to_voice().desc())
        .only("session_id", "occurred_at", "build_id", "details", "event_id")
    )
    if params["build"] is not None:
        turns = turns.filter(build_id=params["build"])
    return [
        {"session_id": turn.session_id, "number": turn.details.get("turn", {}).get("number"),
         "started_at": turn.occurred_at, "build_id": turn.build_id, "event_id": turn.event_id,
         "pk": turn.pk,
         "voice_to_voice_ms": turn.details["metrics"][VOICE_TO_VOICE]}
        for turn in turns[:SLOWEST]
    ]  # fmt: skip


# A rule's window up to this long reads minute rows (kept for the last three hours); a longer
# one reads hour rows, so it is counted in whole hours.
MINUTE_WINDOW_MAX = timedelta(hours=2)


def latency_recent(*, project_id: object, metric: str, seconds: int,
                   now: datetime) -> tuple[float | None, int]:  # fmt: skip
    """The p95 of one latency over the last ``seconds`` and how many values it is of, for the
    latency alert rules (errorsink/alerts/evaluate.py): one read of the rollups' rows."""
    since = now - timedelta(seconds=seconds)
    if timedelta(seconds=seconds) <= MINUTE_WINDOW_MAX:
        span, start = "m", since.replace(second=0, microsecond=0)
    else:
        span, start = "h", since.replace(minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count, total, minimum, maximum, sketch FROM errorsink_figure_metrics "
            "WHERE project_id = %s AND span = %s AND bucket >= %s AND metric = %s",
            [project_id, span, start, metric],
        )
        rows = cursor.fetchall()
    if not rows:
        return None, 0
    merged = [sum(row[0] for row in rows), sum(row[1] for row in rows),
              min(row[2] for row in rows), max(row[3] for row in rows),
              [bytes(row[4]) for row in rows]]  # fmt: skip
    figure = _percentiles(merged)
    return figure["p95"], figure["count"]


def slowest_turns(*, project_id: object, since: datetime, limit: int) -> list[Event]:
    """The turns since then with the longest voice-to-voice (index ``event_turn_slowest``)."""
    return list(
        Event.objects.filter(
            project_id=project_id,
            kind=Event.TURN,
            code="turn",
            occurred_at__gte=since,
            details__metrics__has_key=VOICE_TO_VOICE,
        ).order_by(voice_to_voice().desc())[  # fmt: skip
            :limit
        ]
    )
