"""Reads for the dashboard: the latest errors, one session's timeline, 24-hour activity (from
the quality rollups)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from errorsink.models import Event, Session
from errorsink.quality import projects_hourly_counts

LATEST_LIMIT = 20
HOURS = 24

# What the error table and the timeline show; `raw` (up to 64 KiB per row) is never needed.
_ROW_FIELDS = (
    "id", "project_id", "session_id", "kind", "code", "name", "message", "occurred_at",
    "received_at", "source", "severity", "recoverable", "build_id", "details",
)  # fmt: skip
_TIMELINE_FIELDS = (*_ROW_FIELDS, "stack", "customer_context")


def project_errors_latest(
    *, project_id: object, code: str = "", source: str = "", limit: int = LATEST_LIMIT
) -> list[Event]:
    """The newest errors in arrival order (index `event_latest_errors`), maybe by code/source."""
    events = Event.objects.filter(project_id=project_id, kind=Event.ERROR)
    if code:
        events = events.filter(code=code)
    if source:
        events = events.filter(source=source)
    return list(events.only(*_ROW_FIELDS).order_by("-received_at", "-id")[:limit])


def events_by_ids(
    *, ids: Iterable[int], project_id: object | None = None, session_id: str | None = None
) -> list[Event]:
    """Rows for a live push: one query however many ids, newest arrival first."""
    events = Event.objects.filter(id__in=list(ids))
    if project_id is not None:
        events = events.filter(project_id=project_id)
    if session_id is not None:
        events = events.filter(session_id=session_id)
    return list(events.only(*_TIMELINE_FIELDS).order_by("-received_at", "-id"))


def project_has_events(*, project_id: object) -> bool:
    return Event.objects.filter(project_id=project_id).exists()


def session_exists(*, project_id: object, session_id: str) -> bool:
    if not session_id:
        return False
    return (
        Session.objects.filter(project_id=project_id, session_id=session_id).exists()
        or Event.objects.filter(project_id=project_id, session_id=session_id).exists()
    )


def session_timeline(*, project_id: object, session_id: str) -> list[Event]:
    """Every event of one session in time order (index `event_timeline`)."""
    events = Event.objects.filter(project_id=project_id, session_id=session_id)
    return list(events.only(*_TIMELINE_FIELDS).order_by("occurred_at", "id"))


@dataclass
class Activity:
    """Errors and warnings of one project per hour, oldest hour first."""

    errors_by_hour: list[int] = field(default_factory=lambda: [0] * HOURS)
    warnings_by_hour: list[int] = field(default_factory=lambda: [0] * HOURS)

    @property
    def errors(self) -> int:
        return sum(self.errors_by_hour)

    @property
    def warnings(self) -> int:
        return sum(self.warnings_by_hour)


def activity_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """24 whole clock hours ending with the current one, so buckets line up with TruncHour."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=HOURS), end


def projects_activity_24h(
    *, project_ids: Iterable[object], now: datetime | None = None
) -> dict[object, Activity]:
    """One read of the hourly rollups for all the projects, never one per project (the figures
    trail ingest by the rollups' few seconds)."""
    project_ids = list(project_ids)
    activity = {project_id: Activity() for project_id in project_ids}
    if not project_ids:
        return activity
    start, end = activity_window(now)
    for row in projects_hourly_counts(project_ids=project_ids, start=start, end=end):
        bucket = int((row["bucket"] - start).total_seconds() // 3600)
        series = activity[row["project_id"]]
        series.errors_by_hour[bucket] += row["errors"]
        series.warnings_by_hour[bucket] += row["warnings"]
    return activity
