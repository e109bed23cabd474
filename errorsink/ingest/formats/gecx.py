"""gecx-chat's ChatSdkError (docs/formats.md): the event's own severity and retryable win over the
catalog's, and its userMessage, developerHint and docsUrl are kept in details."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SkipValidation

from errorsink.catalog import lookup
from errorsink.ingest.formats.base import SdkEvent, SdkItem
from errorsink.ingest.formats.shared import (
    MESSAGE_MAX,
    Code,
    Flag,
    Message,
    NormalisedEvent,
    Severity,
    Stack,
    Text,
    clip,
)


class GecxEvent(SdkEvent):
    code: Code
    retryable: Flag | None = None
    userMessage: Text | None = None
    developerHint: Text | None = None
    docsUrl: Text | None = None
    message: Message | None = None
    severity: Severity | None = None
    stack: Stack | None = None
    # Copied into details as the SDK sent them, unchecked: they are shown, never computed on.
    requestId: SkipValidation[Any] = None
    correlationId: SkipValidation[Any] = None

    def details(self, retryable: bool | None) -> dict:
        details = {
            "sdk": "gecx",
            "retryable": retryable,
            "userMessage": self.userMessage,
            "developerHint": self.developerHint,
            "docsUrl": self.docsUrl,
        }
        for key in ("requestId", "correlationId"):
            if getattr(self, key) is not None:
                details[key] = getattr(self, key)
        return details


class GecxError(SdkItem):
    """A ChatSdkError; recoverable is its retryable flag, else the catalog's."""

    sdk: Literal["gecx"]
    name: Literal["ChatSdkError"]
    event: GecxEvent

    def normalised(self, raw: dict) -> NormalisedEvent:
        event = self.event
        info = lookup(event.code, sdk="gecx", fallback=False)
        retryable = event.retryable
        if retryable is None and info is not None:
            retryable = info.retryable  # every gecx entry of the catalog has one
        message = event.message or event.userMessage
        return self.build(
            raw,
            code=event.code,
            info=info,
            kind=info.kind if info else "error",
            name=event.code,
            message=clip(message, MESSAGE_MAX) if message else None,
            severity=event.severity,
            recoverable=retryable,
            details=event.details(retryable),
            stack=event.stack,
        )
