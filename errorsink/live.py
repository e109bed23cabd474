"""The live-push protocol between the ingest worker and Daphne: a group per project, one message.

The worker's notifier (errorsink/ingest/notify.py) sends `EventsStored(...).encode()` to
`group_name(project_id)`; Daphne's hub (dashboard/hub.py) decodes it and hands the events to the
project's open pages. The message carries ids and kinds only: every page fetches the rows it
shows, so a forged or stale message can show nothing a page may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EVENTS_STORED = "events.stored"


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
        return {"type": EVENTS_STORED, "events": [[e.pk, e.kind] for e in self.events]}

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
