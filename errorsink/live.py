"""The live-push protocol between the worker and Daphne: a group per project, two messages.

The worker's notifier (errorsink/ingest/notify.py) sends `events_stored_message(...)` to
`group_name(project_id)`; Daphne's hub (dashboard/hub.py) decodes it and hands the events to the
project's open pages. The message carries ids and kinds, and for each error its code, source and
arrival: what a project page picks its newest matching rows by, so that picking reads nothing.
They are hints only: every row a page shows is then fetched from the database and checked there
against the page's project and filters, so a forged or stale message can show nothing a page
may not see. After the quality rollups moved, `quality_updated_announce` sends `QualityUpdated`
the same way, and pages redraw their quality panel from the rollups.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger("errorsink.live")

EVENTS_STORED = "events.stored"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUALITY_UPDATED = "quality.updated"


def group_name(project_id: object) -> str:
    """The channel-layer group of one project's open dashboards."""
    return f"project.{project_id}"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    pk: int
    kind: str
    # An error's hints (see above); None for other kinds and for messages without them.
    code: str | None = None
    source: str | None = None
    received_us: int | None = None  # arrival, microseconds since the epoch

    @property
    def hinted(self) -> bool:
        return self.received_us is not None

    def valid(self) -> bool:
        if type(self.pk) is not int or type(self.kind) is not str:
            return False
        if not self.hinted:
            return self.code is None and self.source is None  # all three hints or none
        return type(self.code) is str and type(self.source) is str and type(self.received_us) is int


def epoch_us(moment: datetime) -> int:
    """A timezone-aware moment as whole microseconds since the epoch, exactly."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def moment_of(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def stored_error(pk: int, code: str, source: str, received_us: int) -> tuple:
    """An error as the notice carries it: (pk, "error", code, source, arrival in µs)."""
    return (pk, "error", code, source, received_us)


@dataclass(frozen=True, slots=True)
class EventsStored:
    """Events of one project just committed, in the order they were stored."""

    events: tuple[StoredEvent, ...]

    @classmethod
    def of(cls, events: Iterable[tuple]) -> EventsStored:
        """From (pk, kind) pairs, or (pk, kind, code, source, arrival µs) for a hinted error."""
        return cls(tuple(StoredEvent(*event) for event in events))

    def encode(self) -> dict:
        """Plain JSON for the channel layer: `{"type": "events.stored", "events": [[pk, kind]]}`,
        an error's entry with its hints after the kind."""
        return events_stored_message([
            (e.pk, e.kind, e.code, e.source, e.received_us) if e.hinted else (e.pk, e.kind)
            for e in self.events
        ])  # fmt: skip

    @classmethod
    def decode(cls, message: dict) -> EventsStored:
        """The message `encode` made; ValueError for anything else."""
        if message.get("type") != EVENTS_STORED:
            raise ValueError(f"not an {EVENTS_STORED} message: {message.get('type')!r}")
        try:
            stored = cls.of(message["events"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {EVENTS_STORED} message: {exc!r}") from None
        if not all(event.valid() for event in stored.events):
            raise ValueError(f"malformed {EVENTS_STORED} message: {message['events']!r}")
        return stored


def events_stored_message(events: list[tuple]) -> dict:
    """The message of ``EventsStored.encode`` made straight from the events' tuples: the notifier
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
