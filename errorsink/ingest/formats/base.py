"""The base models of queue items: the fields every item and every SDK event share, and the one
builder that turns a validated item into its NormalisedEvent."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, SkipValidation, TypeAdapter

from errorsink.catalog import CodeInfo, lookup
from errorsink.ingest.formats.shared import (
    STRICT,
    BuildId,
    EventId,
    Fingerprint,
    JsonObject,
    NormalisedEvent,
    ProjectId,
    SdkTime,
    SessionId,
    Source,
    Time,
    checked,
    content_id,
)

DEFAULT_SEVERITY = {"error": "medium", "warning": "low", "termination": "low", "turn": "low"}
# Fields of every item that are checked after the item's own: a reason names them only when
# nothing else is wrong.
LATE_FIELDS = ("event_id", "source", "build_id", "customer_context", "fingerprint")


class Item(BaseModel):
    """What any queue item may carry besides its own fields; subclasses say what they add,
    where their session and time are, and which event they stand for."""

    model_config = STRICT

    project_id: ProjectId
    event_id: EventId | None = None
    source: Source | None = None
    build_id: BuildId | None = None
    customer_context: JsonObject | None = None
    fingerprint: Fingerprint | None = None

    def normalised(self, raw: dict) -> NormalisedEvent:
        """The event this item stands for; ``raw`` is the object it was validated from."""
        raise NotImplementedError

    def session(self) -> str | None:
        raise NotImplementedError

    def when(self) -> datetime | None:
        raise NotImplementedError

    def default_source(self, code: str, info: CodeInfo | None) -> str:
        raise NotImplementedError

    def build(
        self,
        raw: dict,
        *,
        code: str,
        info: CodeInfo | None,
        kind: str,
        name: str | None = None,
        message: str | None = None,
        severity: str | None = None,
        recoverable: bool | None = None,
        details: dict | None = None,
        stack: str | None = None,
    ) -> NormalisedEvent:
        """The event; what a format leaves out (None) comes from the code's catalog entry
        ``info``, else from the code itself (name, message) or from the kind (severity)."""
        if info is not None:
            name = name or info.name
            severity = severity or info.severity
            recoverable = info.recoverable if recoverable is None else recoverable
        # Positional, in field order: matching seventeen keywords costs a microsecond an item.
        return NormalisedEvent(
            self.project_id,
            self.session(),
            self.event_id or content_id(raw),
            kind,
            code,
            name or code,
            (info.description if info is not None else code) if message is None else message,
            self.when(),
            self.source or self.default_source(code, info),
            severity or DEFAULT_SEVERITY[kind],
            recoverable,
            self.build_id,
            stack,
            self.customer_context,
            {} if details is None else details,
            raw["type"],
            raw,
            self.fingerprint,
        )

    def termination(self, raw: dict, *, cause: str, details: dict) -> NormalisedEvent:
        """How a call ended, a ``session_end`` or an SDK's hangup: both name Telnyx's causes."""
        info = lookup(cause, sdk="telnyx")
        return self.build(raw, code=cause, info=info, kind="termination", details=details)


_SESSION_ID = TypeAdapter(SessionId)
_SDK_TIME = TypeAdapter(SdkTime)


class SdkEvent(BaseModel):
    """The fields of an SDK's own event that errorsink reads whatever the SDK: its session and
    time, read (and so checked) only where the wrapper does not give them."""

    model_config = STRICT

    sessionId: SkipValidation[SessionId | None] = None
    session_id: SkipValidation[SessionId | None] = None
    timestamp: SkipValidation[SdkTime | None] = None

    def session(self) -> str | None:
        if self.sessionId is not None:
            return checked(_SESSION_ID, self.sessionId, "event.sessionId")
        if self.session_id is not None:
            return checked(_SESSION_ID, self.session_id, "event.session_id")
        return None

    def when(self) -> datetime | None:
        if self.timestamp is None:
            return None
        return checked(_SDK_TIME, self.timestamp, "event.timestamp")


class SdkItem(Item):
    """An SDK's event as that SDK emits it, wrapped with the project and, where errorsink's
    producer knows them (the orchestrator's session, its clock), a session and a time."""

    type: Literal["sdk_event"]
    sdk: str  # each SDK format narrows sdk, name and event to its own
    name: str
    event: SdkEvent
    session_id: SessionId | None = None
    occurred_at: Time | None = None

    def session(self) -> str | None:
        return self.event.session() if self.session_id is None else self.session_id

    def when(self) -> datetime | None:
        return self.event.when() if self.occurred_at is None else self.occurred_at

    def default_source(self, code: str, info: CodeInfo | None) -> str:
        return info.source if info is not None else "client"


def termination_details(
    cause: str,
    *,
    cause_code: int | None,
    sip_code: int | None,
    sip_reason: str | None,
    close_code: int | None = None,
    duration_ms: float | None = None,
) -> dict:
    """One shape for every termination (None where absent), read by ``Event.termination``, so
    that one template renders a ``session_end`` and an SDK's hangup alike."""
    return {
        "termination": {
            "cause": cause,
            "cause_code": cause_code,
            "sip_code": sip_code,
            "sip_reason": sip_reason,
            "close_code": close_code,
            "duration_ms": duration_ms,
        }
    }
