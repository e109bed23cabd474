"""OneBudd STS error events (docs/formats.md): ``payload.code`` and ``payload.fatal``, an epoch-ms
``timestamp``; the event's own fatal flag decides severity and recoverable where it is given."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from errorsink.catalog import lookup
from errorsink.ingest.formats.base import SdkEvent, SdkItem
from errorsink.ingest.formats.shared import STRICT, Code, Flag, Message, NormalisedEvent


class OneBuddPayload(BaseModel):
    model_config = STRICT

    code: Code
    fatal: Flag | None = None
    message: Message | None = None


class OneBuddEvent(SdkEvent):
    payload: OneBuddPayload


class OneBuddError(SdkItem):
    """A OneBudd ``error`` event; recoverable is the opposite of its fatal flag."""

    sdk: Literal["onebudd"]
    name: Literal["error"]
    event: OneBuddEvent

    def normalised(self, raw: dict) -> NormalisedEvent:
        payload = self.event.payload
        severity = recoverable = None
        if payload.fatal is not None:
            # The occurrence's own flag is the truth; the catalog's rule is the same.
            severity, recoverable = ("high" if payload.fatal else "medium"), not payload.fatal
        info = lookup(payload.code, sdk="onebudd", fallback=False)
        return self.build(
            raw,
            code=payload.code,
            info=info,
            kind=info.kind if info else "error",
            name=payload.code,
            message=payload.message or None,
            severity=severity,
            recoverable=recoverable,
            details={"sdk": "onebudd", "fatal": payload.fatal},
        )
