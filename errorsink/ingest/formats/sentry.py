"""Events of unmodified Sentry SDKs (docs/sentry.md), as the Sentry endpoints queue them:
``{"type": "sdk_event", "sdk": "sentry", "name": "event", "project_id", "event_id", "event":
<the Sentry event>}``. An event becomes an error: code = the exception type (or the level of a
``capture_message``), message = its value, stack = the frames as Python-style text, build =
``release``, session = the tag ``session_id`` (or ``voice.session_id``), customer context =
``user`` and ``contexts``, time = ``timestamp`` (Unix seconds or ISO 8601). Sentry's own
``fingerprint`` groups it when given; otherwise the exception type and the innermost in-app
frame do, as in Sentry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, TypeAdapter

from errorsink.ingest.formats.base import SdkEvent, SdkItem
from errorsink.ingest.formats.shared import (
    ID_MAX,
    STACK_MAX,
    NormalisedEvent,
    bad_field,
    checked,
    clip,
    iso_time,
)

LENIENT = ConfigDict(extra="ignore")  # SDKs differ in the fields they send; read what is there
SEVERITY = {"fatal": "critical", "error": "high", "warning": "medium", "info": "low",
            "debug": "low"}  # fmt: skip
SESSION_TAGS = ("session_id", "voice.session_id")


class SentryFrame(BaseModel):
    model_config = LENIENT

    filename: str | None = None
    abs_path: str | None = None
    module: str | None = None
    function: str | None = None
    lineno: int | None = None
    in_app: bool | None = None

    def where(self) -> str:
        return self.filename or self.abs_path or self.module or "?"

    def as_text(self) -> str:
        return f'  File "{self.where()}", line {self.lineno or 0}, in {self.function or "?"}'


class SentryStacktrace(BaseModel):
    model_config = LENIENT

    frames: list[SentryFrame] = []


class SentryMechanism(BaseModel):
    model_config = LENIENT

    handled: bool | None = None


class SentryException(BaseModel):
    model_config = LENIENT

    type: str | None = None
    value: str | None = None
    stacktrace: SentryStacktrace | None = None
    mechanism: SentryMechanism | None = None


class SentryExceptions(BaseModel):
    model_config = LENIENT

    values: list[SentryException] = []


class SentryLogEntry(BaseModel):
    model_config = LENIENT

    message: str | None = None
    formatted: str | None = None


class SentryEventBody(SdkEvent):
    """The Sentry event: read leniently (any SDK, any version), only what errorsink uses."""

    model_config = LENIENT

    timestamp: Any = None  # Unix seconds (a number) or ISO 8601, unlike the other SDKs' ms
    level: str | None = None
    message: str | SentryLogEntry | None = None
    logentry: SentryLogEntry | None = None
    exception: SentryExceptions | None = None
    tags: dict[str, Any] | list[list[Any]] | None = None
    release: str | None = None
    user: dict[str, Any] | None = None
    contexts: dict[str, Any] | None = None
    fingerprint: list[str] | None = None
    platform: str | None = None

    def session(self) -> str | None:
        # Tags as an object or as [name, value] pairs; a pair of any other shape is no tag.
        if isinstance(self.tags, list):
            tags = {pair[0]: pair[1] for pair in self.tags
                    if len(pair) == 2 and isinstance(pair[0], str)}  # fmt: skip
        else:
            tags = self.tags or {}
        for name in SESSION_TAGS:
            value = tags.get(name)
            if isinstance(value, str) and value.strip():
                return value
        return None

    def when(self) -> datetime | None:
        if self.timestamp is None:
            return None
        return checked(_SENTRY_TIME, self.timestamp, "event.timestamp")

    def main_exception(self) -> SentryException | None:
        # Sentry lists chained exceptions cause first: the last is the one raised.
        values = self.exception.values if self.exception else []
        return values[-1] if values else None

    def text(self) -> str:
        if isinstance(self.message, str):
            return self.message
        entry = self.logentry or (self.message if isinstance(self.message, SentryLogEntry)
                                  else None)  # fmt: skip
        return (entry.formatted or entry.message or "") if entry else ""


def _sentry_time(value: Any) -> datetime:
    if isinstance(value, str):
        return iso_time(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise bad_field(f"is not a usable Unix time: {value}") from None
    raise bad_field("must be Unix seconds or an ISO 8601 string")


_SENTRY_TIME = TypeAdapter(Annotated[datetime, PlainValidator(_sentry_time)])


class SentryEvent(SdkItem):
    sdk: Literal["sentry"]
    name: Literal["event"]
    event: SentryEventBody

    def normalised(self, raw: dict) -> NormalisedEvent:
        event = self.event
        exception = event.main_exception()
        level = (event.level or "error").lower()
        code = clip((exception.type if exception and exception.type else level.upper())
                    or "ERROR", limit=128)  # fmt: skip
        message = (exception.value if exception and exception.value else None) or event.text()
        frames = exception.stacktrace.frames if exception and exception.stacktrace else []
        handled = exception.mechanism.handled if exception and exception.mechanism else None
        if self.fingerprint is None:
            self.fingerprint = event.fingerprint or _default_fingerprint(exception, frames)
        if self.build_id is None and event.release:
            self.build_id = clip(event.release, limit=ID_MAX)
        if self.customer_context is None and (event.user or event.contexts):
            self.customer_context = {**({"user": event.user} if event.user else {}),
                                     **(event.contexts or {})}  # fmt: skip
        return self.build(
            raw, code=code, info=None, kind="error", name=code, message=message,
            severity=SEVERITY.get(level, "high"),
            recoverable=None if handled is None else bool(handled),
            stack=_stack_text(exception, frames),
            details={"sdk": "sentry", "level": level, "platform": event.platform,
                     "frames": [_frame_detail(frame) for frame in frames[-50:]]},
        )  # fmt: skip

    def default_source(self, code: str, info: Any) -> str:
        return "agent"  # Sentry SDKs run in the agent's own process


def _default_fingerprint(exception: SentryException | None, frames: list[SentryFrame]):
    """As Sentry groups without a fingerprint: the exception type and the innermost in-app
    frame (file and function, no line). A message (no exception) keeps errorsink's default."""
    if exception is None or not exception.type:
        return None
    in_app = [frame for frame in frames if frame.in_app] or frames
    parts = [exception.type]
    if in_app:
        parts.append(f"{in_app[-1].where()} in {in_app[-1].function or '?'}")
    return parts


def _stack_text(exception: SentryException | None, frames: list[SentryFrame]) -> str | None:
    if not frames:
        return None
    lines = ["Traceback (most recent call last):", *(frame.as_text() for frame in frames)]
    if exception is not None:
        lines.append(f"{exception.type or 'Error'}: {exception.value or ''}".rstrip(": "))
    return clip("\n".join(lines), limit=STACK_MAX)


def _frame_detail(frame: SentryFrame) -> dict:
    return {"file": frame.where(), "function": frame.function, "line": frame.lineno,
            "in_app": bool(frame.in_app)}  # fmt: skip
