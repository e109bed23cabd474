"""The live-push protocol between the worker and Daphne: a group per project, two messages.

The worker's notifier (errorsink/ingest/notify.py) sends `events_stored_message(...)` to
`group_name(project_id)`; Daphne's hub (dashboard/hub.py) decodes it and hands the events to the
project's open pages. The message carries ids and kinds only: every page fetches the rows it
shows, so a forged or stale message can show nothing a page may not see. After the quality
rollups moved, `quality_updated_announce` sends `QualityUpdated` the same way, and pages redraw
their quality panel from the rollups.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger("errorsink.live")

EVENTS_STORED = "events.stored"
QUALITY_UPDATED = "quality.updated"


def group_name(project_id: object) -> str:
    """The channel-layer group of one project's open dashboards."""
    return f"project.{project_id}"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    pk: int
    kind: str


@dataclass(frozen=True, slots=True)
class EventsStored:
    """Events of one project just committed, in the order they were stored."""

    events: tuple[StoredEvent, ...]

    @classmethod
    def of(cls, events: Iterable[tuple[int, str]]) -> EventsStored:
        return cls(tuple(StoredEvent(pk, kind) for pk, kind in events))

    def encode(self) -> dict:
        """Plain JSON for the channel layer: `{"type": "events.stored", "events": [[pk, kind]]}`."""
        return events_stored_message([(e.pk, e.kind) for e in self.events])

    @classmethod
    def decode(cls, message: dict) -> EventsStored:
        """The message `encode` made; ValueError for anything else."""
        if message.get("type") != EVENTS_STORED:
            raise ValueError(f"not an {EVENTS_STORED} message: {message.get('type')!r}")
        try:
            stored = cls.of(message["events"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {EVENTS_STORED} message: {exc!r}") from None
        if not all(type(e.pk) is int and type(e.kind) is str for e in stored.events):
            raise ValueError(f"malformed {EVENTS_STORED} message: {message['events']!r}")
        return stored


def events_stored_message(events: list[tuple[int, str]]) -> dict:
    """The message of ``EventsStored.encode`` made straight from (pk, kind) pairs: the notifier
    sends thousands a second, and an object per event cost ingest a tenth of its time. The
    channel layer packs tuples as arrays, so the page's hub reads the same lists."""
    return {"type": EVENTS_STORED, "events": events}


@dataclass(frozen=True, slots=True)
class QualityUpdated:
    """The project's quality rollups changed; it says nothing else, pages read them again."""

    def encode(self) -> dict:
        return {"type": QUALITY_UPDATED}

    @classmethod
    def is_one(cls, message: dict) -> bool:
        return message.get("type") == QUALITY_UPDATED


def quality_updated_announce(project_ids: Iterable[object]) -> None:
    """Tell each project's open dashboards that its quality figures moved (a hint: failures are
    logged, never raised, and the pages read the rollups themselves)."""
    layer = get_channel_layer()
    for project_id in sorted(project_ids, key=str):
        try:
            async_to_sync(layer.group_send)(group_name(project_id), QualityUpdated().encode())
        except Exception:
            log.exception(
                "could not tell dashboards of project %s that its figures moved", project_id
            )
