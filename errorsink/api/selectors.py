"""The reads behind the API's event routes: one query each, on the indexes made for them."""

from __future__ import annotations

import uuid

from errorsink.models import Event, Session

LATEST_ERRORS = 20
# A session with more events than this is a runaway loop; the response says it was cut.
SESSION_EVENTS_MAX = 1000


def project_errors_latest(*, project_id: uuid.UUID, limit: int = LATEST_ERRORS) -> list[Event]:
    """Newest first in arrival order (index event_latest_errors), as the dashboard lists them."""
    events = Event.objects.filter(project_id=project_id, kind=Event.ERROR)
    return list(events.order_by("-received_at", "-id")[:limit])


def session_events(
    *, project_id: uuid.UUID, session_id: str, kinds: tuple[str, ...] | None = None
) -> tuple[list[Event], bool]:
    """One session's events in the order they happened (index event_timeline), and whether
    the list was cut at SESSION_EVENTS_MAX."""
    events = Event.objects.filter(project_id=project_id, session_id=session_id)
    if kinds is not None:
        events = events.filter(kind__in=kinds)
    rows = list(events.order_by("occurred_at", "id")[: SESSION_EVENTS_MAX + 1])
    return rows[:SESSION_EVENTS_MAX], len(rows) > SESSION_EVENTS_MAX


def session_known(*, project_id: uuid.UUID, session_id: str) -> bool:
    return (
        Session.objects.filter(project_id=project_id, session_id=session_id).exists()
        or Event.objects.filter(project_id=project_id, session_id=session_id).exists()
    )
