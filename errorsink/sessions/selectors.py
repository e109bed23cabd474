"""Reads of stored events and sessions, the same for the dashboard, its live pushes and the API.

Every list is bounded: the latest errors by LATEST_ERRORS, a session by SESSION_EVENTS_MAX (and
the result says when it was cut), rows by id by the ids asked for. Each read is served by the
index made for it in errorsink/sessions/models.py (tests/errorsink/sessions/test_indexes.py
checks the plans); the projects list's 24-hour activity comes from the quality rollups.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from errorsink.paging import LIMIT_DEFAULT
from errorsink.quality.selectors import projects_hourly_counts
from errorsink.sessions.models import Event, Session

LATEST_ERRORS = LIMIT_DEFAULT  # a list page, as errorsink/paging.py sizes them
# A session with more events than this is a runaway loop; the read says it was cut.
SESSION_EVENTS_MAX = 1000
TURN_PARTS_MAX = 4 * SESSION_EVENTS_MAX  # a turn is about four spans (the turn and its stages)
HOURS = 24


def _events() -> QuerySet[Event]:
    # `raw`, the item as it came (up to 64 KiB a row), is kept for the record; no read shows it.
    return Event.objects.defer("raw")


def project_has_events(*, project_id: object) -> bool:
    return Event.objects.filter(project_id=project_id).exists()


@dataclass(frozen=True, slots=True)
class SessionEvents:
    """One session's events in the order they happened, cut at `limit` when `truncated`."""

    events: list[Event]
    truncated: bool
    limit: int


def session_events(
    *, project_id: object, session_id: str, kinds: tuple[str, ...] | None = None,
    with_turns: bool = False,
) -> SessionEvents:  # fmt: skip
    """The first SESSION_EVENTS_MAX events of one session, maybe of some kinds only (index
    `event_timeline`); one row more is read to know whether there were more. A voice turn's
    spans (kind turn, docs/turns.md) are left out unless ``with_turns``, and then read apart,
    up to TURN_PARTS_MAX of them: a long call's turns never push its errors out of the limit.

    Bounded by the session's first and last moments, which ingest keeps in the same transaction
    as its events: PostgreSQL then opens only the days' partitions the session spans (pruned at
    run time), not every day the retention keeps."""
    limit = SESSION_EVENTS_MAX
    events = _events().filter(project_id=project_id, session_id=session_id)
    events = events.filter(**_within_session(project_id, session_id))
    chosen = events.filter(kind__in=kinds) if kinds is not None else events.exclude(
        kind=Event.TURN)  # fmt: skip
    chosen = chosen.order_by("occurred_at", "id")[: limit + 1]
    if not with_turns:
        rows = list(chosen)
        return SessionEvents(events=rows[:limit], truncated=len(rows) > limit, limit=limit)
    # One query for both: each side keeps its own limit inside the UNION ALL.
    turns = events.filter(kind=Event.TURN).order_by("occurred_at", "id")[:TURN_PARTS_MAX]
    rows = sorted(chosen.union(turns, all=True), key=lambda event: (event.occurred_at, event.pk))
    others = [event for event in rows if event.kind != Event.TURN]
    if len(others) <= limit:
        return SessionEvents(events=rows, truncated=False, limit=limit)
    last = (others[limit - 1].occurred_at, others[limit - 1].pk)  # nothing after the cut
    shown = [event for event in rows if (event.occurred_at, event.pk) <= last]
    return SessionEvents(events=shown, truncated=True, limit=limit)


def session_turn_events(*, project_id: object, session_id: str) -> SessionEvents:
    """The spans of one session's voice turns (kind turn), up to TURN_PARTS_MAX, in order."""
    events = _events().filter(project_id=project_id, session_id=session_id, kind=Event.TURN)
    events = events.filter(**_within_session(project_id, session_id))
    rows = list(events.order_by("occurred_at", "id")[: TURN_PARTS_MAX + 1])
    return SessionEvents(events=rows[:TURN_PARTS_MAX], truncated=len(rows) > TURN_PARTS_MAX,
                         limit=TURN_PARTS_MAX)  # fmt: skip


# A session without its row (never, since ingest writes both together) is read unbounded.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _within_session(project_id: object, session_id: str) -> dict:
    session = Session.objects.filter(project_id=project_id, session_id=session_id)
    first = Subquery(session.values("first_seen")[:1])
    last = Subquery(session.values("last_seen")[:1])
    return {"occurred_at__gte": Coalesce(first, Value(_EARLIEST)),
            "occurred_at__lte": Coalesce(last, Value(_LATEST))}  # fmt: skip


def session_exists(*, project_id: object, session_id: str) -> bool:
    """A session is known by its row or, before the worker has written that, by its events."""
    if not session_id:
        return False
    return (
        Session.objects.filter(project_id=project_id, session_id=session_id).exists()
        or Event.objects.filter(project_id=project_id, session_id=session_id).exists()
    )


def session_get(*, project_id: object, session_id: str) -> Session | None:
    return Session.objects.filter(project_id=project_id, session_id=session_id).first()


def events_by_ids(
    *, ids: Iterable[int], project_id: object | None = None, session_id: str | None = None
) -> list[Event]:
    """Rows for a live push, newest arrival first: one query, at most one row per id."""
    events = _events().filter(id__in=list(ids))
    if project_id is not None:
        events = events.filter(project_id=project_id)
    if session_id is not None:
        events = events.filter(session_id=session_id)
    return list(events.order_by("-received_at", "-id"))


@dataclass(frozen=True, slots=True)
class EventMeta:
    """What a page needs to decide whether it shows an event, without the event itself."""

    pk: int
    project_id: object
    kind: str
    code: str
    source: str
    received_at: datetime

    @property
    def order(self) -> tuple[datetime, int]:
        """The order of the error lists (errorsink/issues/selectors.py errors_page): arrival, newest
        first when sorted in reverse."""
        return (self.received_at, self.pk)


def event_metas_by_ids(*, ids: Iterable[int]) -> dict[int, EventMeta]:
    """By pk, at most one per id; ids no longer stored are absent."""
    rows = Event.objects.filter(id__in=list(ids)).values_list(
        "id", "project_id", "kind", "code", "source", "received_at"
    )
    return {row[0]: EventMeta(*row) for row in rows}


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


def activity_window(*, now: datetime | None = None) -> tuple[datetime, datetime]:
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
    start, end = activity_window(now=now)
    for row in projects_hourly_counts(project_ids=project_ids, start=start, end=end):
        bucket = int((row["bucket"] - start).total_seconds() // 3600)
        series = activity[row["project_id"]]
        series.errors_by_hour[bucket] += row["errors"]
        series.warnings_by_hour[bucket] += row["warnings"]
    return activity
