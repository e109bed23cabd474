"""Reads of the quality rollups: a project's figures for one window (docs/quality.md), and the
projects list's hourly counts.

Definitions (the tests recount raw events with exactly these):

- Windows end with the current bucket: ``1h`` is 60 minute buckets, ``24h``, ``7d`` and ``30d``
  are 24, 168 and 720 hour buckets (UTC). ``previous`` is the window of the same length before.
  Events belong to the bucket of their ``occurred_at``.
- A session is *active* when it has any event in the window, *degraded* when one of them is a
  Telnyx 310xx, 320xx or 330xx warning. Events without a session count in totals only.
- An event's build is its ``build_id`` as stored (ingest gives an event that names none its
  session's build: errorsink/ingest/persist.py). With ``build_id``, only events of that build
  count (a session that changed builds is counted under each).
- Metrics: the valid values (see ``errorsink.quality.metrics.METRIC_RANGES``) of a warning code's
  events. ``avg`` is their mean; ``p95`` is by nearest rank: the value at position
  ceil(0.95 x n) of the n values in ascending order (PostgreSQL's ``percentile_disc``), always
  one of the values reported.
- ``series`` lists only buckets with warnings of that code.
- A build's ``first_seen`` is the start of the first bucket of the window with its events: the
  dashboard orders builds by it to compare each with its predecessor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from errorsink.catalog import lookup
from errorsink.quality.models import HOUR, MINUTE, RollupSessionBucket

WINDOWS: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), MINUTE),
    "24h": (timedelta(hours=24), HOUR),
    "7d": (timedelta(days=7), HOUR),
    "30d": (timedelta(days=30), HOUR),
}
BUCKET_NAMES = {MINUTE: "minute", HOUR: "hour"}
# Outcomes a caller chose or a call ends with normally: not failures (docs/quality.md).
EXPECTED_CAUSES = frozenset({"NORMAL_CLEARING", "USER_BUSY", "NO_ANSWER", "CALL_REJECTED"})
BUILD_ID_MAX = 200


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime
    end: datetime
    span: str

    @property
    def previous_start(self) -> datetime:
        return self.start - (self.end - self.start)


def quality_window(name: str, *, now: datetime | None = None) -> Window:
    """The window ``name`` ending with the bucket that holds ``now``."""
    length, span = WINDOWS[name]
    now = now or timezone.now()
    floor = now.replace(second=0, microsecond=0)
    if span == HOUR:
        floor = floor.replace(minute=0)
    end = floor + (timedelta(minutes=1) if span == MINUTE else timedelta(hours=1))
    return Window(name=name, start=end - length, end=end, span=span)


def quality_params_problems(*, window: str, build_id: str | None) -> dict[str, str]:
    """Per parameter what is not allowed; empty when both are fine."""
    problems = {}
    if window not in WINDOWS:
        problems["window"] = f"must be one of {', '.join(WINDOWS)}, got {window!r}"
    if build_id is not None and (
        not build_id
        or len(build_id) > BUILD_ID_MAX
        or not build_id.isprintable()
        or build_id != build_id.strip()
    ):
        problems["build_id"] = (
            f"must be 1 to {BUILD_ID_MAX} printable characters without surrounding spaces"
        )
    return problems


def project_quality_exact(
    *, project_id: object, window: str = "24h", build_id: str | None = None,
    now: datetime | None = None,
) -> dict:  # fmt: skip
    """docs/quality.md response for one project and window, from the per-session rows: exact,
    and the reference the figure reads (errorsink/quality/figure_reads.py) are tested
    against until those rows go."""
    span = quality_window(window, now=now)
    params = {"project": project_id, "span": span.span, "start": span.start, "end": span.end,
              "previous_start": span.previous_start, "build": build_id}  # fmt: skip
    overall, previous, builds = _sessions(params)
    warnings, errors, terminations = _codes(params, active=overall["active"])
    metrics = _metrics(params)
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
        "previous": {"start": span.previous_start, "end": span.start, "sessions": previous},
        "warnings": warnings,
        "terminations": terminations,
        "errors": errors,
        "builds": builds,
    }


def _build_filter(params: dict) -> str:
    return "" if params["build"] is None else "AND build_id = %(build)s"


# Distinct sessions are counted in byte order (COLLATE "C"): the same sessions, since equality
# is byte equality either way, but sorting them so took 30% less time at 10 million events.


def _sessions(params: dict) -> tuple[dict, dict, list[dict]]:
    """Active and degraded sessions of the window and the previous one, and per build."""
    sql = f"""
    SELECT GROUPING(build_id) = 0, build_id,
        count(DISTINCT session_id COLLATE "C")
            FILTER (WHERE bucket >= %(start)s AND session_id <> ''),
        count(DISTINCT session_id COLLATE "C")
            FILTER (WHERE bucket >= %(start)s AND session_id <> '' AND degraded > 0),
        count(DISTINCT session_id COLLATE "C")
            FILTER (WHERE bucket < %(start)s AND session_id <> ''),
        count(DISTINCT session_id COLLATE "C")
            FILTER (WHERE bucket < %(start)s AND session_id <> '' AND degraded > 0),
        coalesce(sum(errors) FILTER (WHERE bucket >= %(start)s), 0),
        min(bucket) FILTER (WHERE bucket >= %(start)s)
    FROM errorsink_rollup_session
    WHERE project_id = %(project)s AND span = %(span)s
      AND bucket >= %(previous_start)s AND bucket < %(end)s {_build_filter(params)}
    GROUP BY GROUPING SETS ((), (build_id))
    """
    overall, previous, builds = _share(0, 0), _share(0, 0), []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for per_build, build, active, degraded, prev_active, prev_degraded, errors, first in cursor:
            if not per_build:
                overall, previous = _share(active, degraded), _share(prev_active, prev_degraded)
            elif active or errors:
                builds.append(_build_row(build, active, degraded, errors, first))
    builds.sort(key=lambda row: (-row["sessions"], row["build_id"]))
    return overall, previous, builds


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


def _codes(params: dict, *, active: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Warnings (with their series), errors and terminations of the window."""
    sql = f"""
    SELECT kind, code, sip_code, bucket, GROUPING(bucket) = 1, sum(count),
           count(DISTINCT session_id COLLATE "C") FILTER (WHERE session_id <> '')
    FROM errorsink_rollup_code
    WHERE project_id = %(project)s AND span = %(span)s
      AND bucket >= %(start)s AND bucket < %(end)s {_build_filter(params)}
    GROUP BY GROUPING SETS ((kind, code, sip_code), (kind, code, sip_code, bucket))
    HAVING GROUPING(bucket) = 1 OR kind = 'warning'
    ORDER BY kind, code, sip_code, bucket
    """
    warnings: dict[str, dict] = {}
    series: dict[str, list[dict]] = {}
    errors, terminations = [], []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, code, sip_code, bucket, total, count, sessions in cursor:
            if not total:
                series.setdefault(code, []).append(
                    {"start": bucket, "count": count, "sessions": sessions}
                )
            elif kind == "warning":
                warnings[code] = _code_row(code, count, sessions, sdk="telnyx")
                warnings[code]["session_share"] = sessions / active if active else 0.0
            elif kind == "error":
                errors.append(_code_row(code, count, sessions))
            else:
                terminations.append({"cause": code, "sip_code": sip_code or None, "count": count,
                                     "sessions": sessions,
                                     "expected": code in EXPECTED_CAUSES})  # fmt: skip
    for code, row in warnings.items():
        row["series"] = series.get(code, [])
    by_count = lambda row: (-row["count"], row["code"])  # noqa: E731
    terminations.sort(key=lambda row: (-row["sessions"], row["cause"], row["sip_code"] or 0))
    return sorted(warnings.values(), key=by_count), sorted(errors, key=by_count), terminations


def _code_row(code: str, count: int, sessions: int, sdk: str | None = None) -> dict:
    info = lookup(code, sdk=sdk)
    return {"code": code, "name": info.name if info else code, "count": count,
            "sessions": sessions}  # fmt: skip


def _metrics(params: dict) -> dict[str, dict[str, dict]]:
    """Per warning code and metric: how many valid values, their mean and p95."""
    sql = f"""
    SELECT code, metric, count(*), avg(v), percentile_disc(0.95) WITHIN GROUP (ORDER BY v)
    FROM errorsink_rollup_metric CROSS JOIN LATERAL unnest(values) AS v
    WHERE project_id = %(project)s AND span = %(span)s
      AND bucket >= %(start)s AND bucket < %(end)s {_build_filter(params)}
    GROUP BY code, metric
    """
    metrics: dict[str, dict[str, dict]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, metric, count, avg, p95 in cursor:
            metrics.setdefault(code, {})[metric] = {"count": count, "avg": avg, "p95": p95}
    return metrics


def projects_hourly_counts(
    *, project_ids: Iterable[object], start: datetime, end: datetime
) -> list[dict]:
    """Errors and warnings per project and hour in [start, end), one query for all projects:
    rows ``{"project_id", "bucket", "errors", "warnings"}``."""
    return list(
        RollupSessionBucket.objects.filter(
            project_id__in=list(project_ids), span=HOUR, bucket__gte=start, bucket__lt=end
        )
        .values("project_id", "bucket")
        .annotate(errors=Sum("errors"), warnings=Sum("warnings"))
        .order_by()
    )
