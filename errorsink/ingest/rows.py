"""The stored event as ingest writes it: one row type, and the column list the COPY is written
from (tests/errorsink/ingest/test_rows.py holds it to the event model).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import orjson

from errorsink.ingest.formats import NormalisedEvent
from errorsink.issues.grouping import fingerprint_cached

# Every column ingest writes, in EventRow's order (the event's id is drawn at write time).
COLUMN_NAMES: tuple[str, ...] = (
    "project_id", "event_id", "session_id", "kind", "code", "name", "message", "occurred_at",
    "received_at", "source", "severity", "recoverable", "build_id", "stack", "customer_context",
    "details", "item_type", "raw", "fingerprint",
)  # fmt: skip


class EventRow(NamedTuple):
    """One event as COPY writes it, field for column; text is cleaned for PostgreSQL and the
    JSON columns are JSON text."""

    seq: int  # its place in the batch, which keeps arrival order
    project_id: str
    event_id: str
    session_id: str
    kind: str
    code: str
    name: str
    message: str
    occurred_at: datetime
    received_at: datetime
    source: str
    severity: str
    recoverable: bool | None
    build_id: str
    stack: str
    customer_context: str | None
    details: str | None
    item_type: str
    raw: str
    fingerprint: str | None  # an error's issue, with the project (errorsink/issues/grouping.py)
    # Not a column: the fingerprint in words, for the issue an error may create.
    fingerprint_parts: list[str] | None

    @classmethod
    def of(cls, seq: int, event: NormalisedEvent, raw_text: str, received_at: datetime) -> EventRow:
        """``raw_text`` is the item as it came, stored without re-serialising."""
        key, parts = event_grouping(event)
        # tuple.__new__ skips the Python frame of the generated __new__: a row per item.
        return tuple.__new__(cls, (
            seq, event.project_id, event.event_id, clean_text(event.session_id), event.kind,
            clean_text(event.code), clean_text(event.name), clean_text(event.message),
            event.occurred_at or received_at, received_at, event.source, event.severity,
            event.recoverable, clean_text(event.build_id), clean_text(event.stack),
            json_text(event.customer_context), json_text(event.details), event.item_type,
            raw_text.replace("\\u0000", "\\ufffd"), key, parts,
        ))  # fmt: skip


def event_grouping(event: NormalisedEvent) -> tuple[str | None, list[str] | None]:
    """An error's fingerprint key and parts (errorsink/issues/grouping.py); other kinds
    have none."""
    if event.kind != "error":
        return None, None
    custom = tuple(event.fingerprint) if event.fingerprint else None
    return fingerprint_cached(event.code, event.message, event.stack or "", custom)


def clean_text(value: str | None) -> str:
    # PostgreSQL text cannot hold NUL; keep the rest of the string rather than lose the event.
    if not value:
        return ""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def json_text(value: object) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode().replace("\\u0000", "\\ufffd")
