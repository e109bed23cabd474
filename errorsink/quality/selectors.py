"""The quality windows and their definitions (docs/quality.md), and the projects list's hourly
counts; a window's figures are read in errorsink/quality/figure_reads.py.

Definitions (the tests recount raw events with exactly these):

- Windows end with the current bucket: ``1h`` is 60 minute buckets, ``24h``, ``7d`` and ``30d``
  are 24, 168 and 720 hour buckets (UTC). ``previous`` is the window of the same length before.
- A ``custom`` window [since, until) is widened to whole buckets: minutes when it lies within
  the last three hours (where minute rows are kept), else hours. It is at most
  ``CUSTOM_DAYS_MAX`` days long and ends no later than the current bucket.
  Events belong to the bucket of their ``occurred_at``.
- A session is *active* when it has any event in the window, *degraded* when one of them is a
  Telnyx 310xx, 320xx or 330xx warning. Events without a session count in totals only.
- An event's build is its session's build (the last one its items named), or its own
  ``build_id`` when it has no session (errorsink/quality/rollups.py, "Builds"). With
  ``build_id``, only events of that build count.
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
from datetime import UTC, datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from errorsink.quality.models import HOUR, MINUTE, FigureSessions

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
CUSTOM = "custom"
CUSTOM_DAYS_MAX = 400
# No event is older; it also keeps a range's previous window within what datetime holds.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Minute rows are kept this long (errorsink/quality/models.py MINUTE_ROWS_KEPT).
MINUTE_ROWS_SPAN = timedelta(hours=3)


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


def custom_window(since: datetime, until: datetime, *, now: datetime | None = None) -> Window:
    """[since, until) widened to whole buckets and cut at the end of the current one; the
    caller has checked it with ``custom_range_problems``."""
    now = now or timezone.now()
    span = MINUTE if since >= now - MINUTE_ROWS_SPAN else HOUR
    step = timedelta(minutes=1) if span == MINUTE else timedelta(hours=1)
    start = _bucket_floor(since, span)
    end = min(_bucket_floor(until - timedelta(microseconds=1), span), _bucket_floor(now, span))
    return Window(name=CUSTOM, start=start, end=max(end + step, start + step), span=span)


def _bucket_floor(moment: datetime, span: str) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment if span == MINUTE else moment.replace(minute=0)


def custom_range_problems(since: datetime | None, until: datetime | None) -> dict[str, str]:
    """What is wrong with a custom range; empty when it is fine."""
    if since is None or until is None:
        missing = "until" if since is not None else "since"
        return {missing: "since and until go together (ISO 8601 times, with a zone)"}
    for name, moment in (("since", since), ("until", until)):
        if moment.tzinfo is None:
            return {name: "needs a time zone, e.g. 2026-12-01T00:00:00Z"}
    if until <= since:
        return {"until": "must be after since"}
    if since < EARLIEST:
        return {"since": f"must be after {EARLIEST:%Y-%m-%d}"}
    if since > timezone.now():
        return {"since": "must not be in the future"}
    if until - since > timedelta(days=CUSTOM_DAYS_MAX):
        return {"until": f"the range may be at most {CUSTOM_DAYS_MAX} days long"}
    return {}


def quality_params_problems(*, window: str, build_id: str | None) -> dict[str, str]:
    """Per parameter what is not allowed; empty when both are fine."""
    problems = {}
    if window not in WINDOWS and window != CUSTOM:
        problems["window"] = f"must be one of {', '.join([*WINDOWS, CUSTOM])}, got {window!r}"
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


def projects_hourly_counts(
    *, project_ids: Iterable[object], start: datetime, end: datetime
) -> list[dict]:
    """Errors and warnings per project and hour in [start, end), one query for all projects:
    rows ``{"project_id", "bucket", "errors", "warnings"}``."""
    return list(
        FigureSessions.objects.filter(
            project_id__in=list(project_ids), span=HOUR, bucket__gte=start, bucket__lt=end
        )
        .values("project_id", "bucket")
        .annotate(errors=Sum("errors"), warnings=Sum("warnings"))
        .order_by()
    )
