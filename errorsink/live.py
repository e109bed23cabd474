"""Notifications to open dashboards: one channel-layer group per project."""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from errorsink.projects import group_name

EVENTS_STORED = "events.stored"


def events_stored_message(events: Iterable[tuple[int, str]]) -> dict:
    """Plain JSON: the ids and kinds of the newly stored events of one project."""
    return {"type": EVENTS_STORED, "events": [[event_id, kind] for event_id, kind in events]}


def notify_events_stored(project_id: object, events: Iterable[tuple[int, str]]) -> None:
    async_to_sync(get_channel_layer().group_send)(
        group_name(project_id), events_stored_message(events)
    )
