"""The Telnyx WebRTC SDK's events (docs/formats.md): telnyx.error, telnyx.warning, and the
telnyx.notification of a call's hangup, which says how the call ended.

Codes come as numbers (31002), digit strings or names (HIGH_JITTER) and are stored as the number
where the name is known. Details keep the SDK's own sessionId and callId, an error's fatal, and a
warning's description, causes and solutions, under their own names. An error is recoverable
when its ``error.fatal`` (SDK 2.27.2 on) is false; without it, when the event says
``recoverable: true``. A hangup that says nothing of how it ended gets the SDK's own default
cause where its ``prevState`` says whether the call had been answered (see ``hangup_default``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    PrivateAttr,
    SkipValidation,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from errorsink.catalog import CodeInfo, lookup, telnyx_code_for_name
from errorsink.ingest.formats.base import SdkEvent, SdkItem, termination_details
from errorsink.ingest.formats.shared import (
    CODE_MAX,
    STRICT,
    Clipped,
    Code,
    Flag,
    Integer,
    Message,
    NormalisedEvent,
    Text,
    bad_field,
    checked,
    clip,
    refused,
    show,
    wrong_type,
)


def _telnyx_code(kind: str, value: Any) -> str:
    """31002, "31002" or "HIGH_JITTER" -> "31002"; unknown names are kept as they came. A name
    of both kinds is read as the code's ``kind`` (SESSION_NOT_REATTACHED: error 48501, warning
    35001)."""
    if type(value) is int:
        if value < 0:
            raise bad_field(f"must not be negative, got {value}")
        return str(value)
    if type(value) is str:
        if not value:
            raise bad_field("must not be empty")
        if value.isdigit() and value.isascii():
            return clip(value, CODE_MAX)
        return telnyx_code_for_name(value, kind=kind) or clip(value, CODE_MAX)
    raise wrong_type("a code name or number")


def _code_type(kind: str, example: str) -> Any:
    return Annotated[
        str,
        PlainValidator(partial(_telnyx_code, kind)),
        WithJsonSchema(
            {
                "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}],
                "description": f"A number or a name ({example}).",
            }
        ),
    ]


TelnyxCode = _code_type("warning", "31002 or HIGH_JITTER")  # a warning's
TelnyxErrorCode = _code_type("error", "45002 or WEBSOCKET_ERROR")
CodeName = Annotated[str, Clipped(CODE_MAX)]
_CODE_NAME = TypeAdapter(CodeName | None)


class TelnyxProblem(BaseModel):
    """A Telnyx error object, and the base of a warning's."""

    model_config = STRICT

    code: TelnyxErrorCode
    name: SkipValidation[CodeName | None] = None  # read only when the code is not known
    message: Message | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_stands_in_for_a_missing_code(cls, data: Any) -> Any:
        # Read, and reported, as the code: the error names the field the code is missing from.
        if type(data) is dict and data.get("code") is None:
            return {**data, "code": data.get("name")}
        return data

    def identity(self, path: str) -> tuple[str, CodeInfo | None, str]:
        """Code, catalog entry and name; an unknown code keeps the name it came with."""
        info = lookup(self.code, sdk="telnyx", fallback=False)
        if info is not None:
            return self.code, info, info.name
        return self.code, None, checked(_CODE_NAME, self.name, f"{path}.name") or self.code


class TelnyxErrorProblem(TelnyxProblem):
    # SDK 2.27.2 on: whether the SDK gives up (true) or recovers, or the failure is benign.
    fatal: Flag | None = None


class TelnyxWarningProblem(TelnyxProblem):
    code: TelnyxCode
    # Copied into details as the SDK sent them, unchecked: they are shown, never computed on.
    description: SkipValidation[Text | None] = None
    causes: SkipValidation[list[str] | None] = None
    solutions: SkipValidation[list[str] | None] = None

    def explanation(self) -> dict:
        keys = ("description", "causes", "solutions")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


class TelnyxEvent(SdkEvent):
    callId: SkipValidation[Text | None] = None

    def details(self, *, call_id: Any = None) -> dict:
        """The SDK's own ids, as it sent them; a hangup's call id wins over the event's."""
        details: dict[str, Any] = {"sdk": "telnyx"}
        if self.sessionId is not None:
            details["sessionId"] = self.sessionId
        if self.callId is not None:
            details["callId"] = self.callId
        if call_id is not None:
            details["callId"] = call_id
        return details


class TelnyxErrorEvent(TelnyxEvent):
    error: TelnyxErrorProblem
    recoverable: Flag | None = None  # true only in the media-permission recovery flow


class TelnyxWarningEvent(TelnyxEvent):
    warning: TelnyxWarningProblem


# The SDK's hangup() defaults a missing cause and causeCode by the state the call hangs up from
# (BaseCall.hangup, since SDK 2.25.20): before State.Active, USER_BUSY / 17 (a rejection, so
# TeXML does not retry); from Active on, NORMAL_CLEARING / 16. A Call carries that state as
# ``prevState`` (lower-case State names). Recovering comes before Active in that enum, so a call
# hung up while recovering gets USER_BUSY, as the SDK gives it. States no hangup comes from
# (hangup, destroy, purge) and anything unknown tell nothing, and get no default.
BEFORE_ANSWER_STATES = frozenset(
    {"new", "requesting", "trying", "recovering", "ringing", "answering", "early"}
)
AFTER_ANSWER_STATES = frozenset({"active", "held"})
HANGUP_DEFAULTS = {
    "before answer": ("USER_BUSY", 17),
    "after answer": ("NORMAL_CLEARING", 16),
}
_ENDING_FIELDS = ("cause", "causeCode", "sipCode", "sipReason")


def hangup_default(call: Any) -> str | None:
    """Which SDK default a hangup that says nothing of how it ended gets, if its prevState says
    whether the call had been answered: "before answer", "after answer" or None.

    Nothing of how it ended: no cause, causeCode, sipCode or sipReason. Where any of them came,
    a default could contradict it (NORMAL_CLEARING beside 486 Busy Here), so none is applied.
    """
    if type(call) is not dict or any(call.get(key) is not None for key in _ENDING_FIELDS):
        return None
    previous = call.get("prevState")
    if type(previous) is not str:
        return None
    if previous in BEFORE_ANSWER_STATES:
        return "before answer"
    if previous in AFTER_ANSWER_STATES:
        return "after answer"
    return None


def _cause_may_be_defaulted(schema: dict) -> None:
    # As published: a cause may be left out where the SDK's default applies (hangup_default).
    required = [name for name in schema.pop("required", []) if name != "cause"]
    if required:  # OpenAPI 3.0 allows no empty list
        schema["required"] = required
    schema["properties"]["cause"]["description"] = (
        "Required, unless the call gives none of cause, causeCode, sipCode and sipReason and "
        "its prevState says whether it was answered: then the SDK's default, USER_BUSY / 17 "
        "before answer, NORMAL_CLEARING / 16 after."
    )


class TelnyxHangupCall(BaseModel):
    model_config = ConfigDict(**STRICT, json_schema_extra=_cause_may_be_defaulted)

    id: SkipValidation[Text | None] = None
    state: SkipValidation[Literal["hangup"]] = "hangup"
    prevState: SkipValidation[Text | None] = None  # kept as sent; read by hangup_default
    cause: Code
    causeCode: Integer | None = None
    sipCode: Integer | None = None
    sipReason: Text | None = None
    # "before answer" / "after answer" when cause and causeCode are the SDK's defaults.
    _cause_default: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _only_a_hangup(cls, data: Any) -> Any:
        if type(data) is dict and data.get("state") != "hangup":
            state = show(data.get("state"))
            raise refused(
                f"telnyx callUpdate with call.state {state} is not stored; only 'hangup' is"
            )
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _sdk_defaults(cls, data: Any, handler: Any) -> Any:
        # Only where the item says nothing of how the call ended and tells whether it had been
        # answered: any other hangup without a cause is still refused for its missing cause,
        # rather than given one errorsink would have to guess. sipCode and sipReason are never
        # defaulted (the SDK leaves them null).
        default = hangup_default(data)
        if default is None:
            return handler(data)
        cause, cause_code = HANGUP_DEFAULTS[default]
        call = handler({**data, "cause": cause, "causeCode": cause_code})
        call._cause_default = default
        return call

    def details(self) -> dict:
        """The SDK's prevState, and which default filled cause and causeCode, where either is."""
        details: dict[str, Any] = {}
        if self.prevState is not None:
            details["prevState"] = self.prevState
        if self._cause_default is not None:
            details["cause_default"] = self._cause_default
        return details


class TelnyxHangupEvent(TelnyxEvent):
    type: SkipValidation[Literal["callUpdate"]] = "callUpdate"
    call: TelnyxHangupCall

    @model_validator(mode="before")
    @classmethod
    def _only_a_call_update(cls, data: Any) -> Any:
        # Only a hangup says how a call ended; the other notifications are UI lifecycle noise
        # or duplicates of structured warnings and errors, so they are refused loudly.
        if type(data) is dict and data.get("type") != "callUpdate":
            raise refused(
                f"telnyx.notification of type {show(data.get('type'))} is not stored; "
                "only a callUpdate whose call.state is 'hangup' is"
            )
        return data


class TelnyxError(SdkItem):
    """A telnyx.error; recoverable only where the event says so."""

    sdk: Literal["telnyx"]
    name: Literal["telnyx.error"]
    event: TelnyxErrorEvent

    def normalised(self, raw: dict) -> NormalisedEvent:
        error = self.event.error
        code, info, name = error.identity("event.error")
        details = self.event.details()
        if error.fatal is None:
            # SDKs before 2.27.2: only the media-permission recovery flow says recoverable,
            # and an absent flag means false (docs/formats.md).
            recoverable = bool(self.event.recoverable)
        else:
            # The SDK's own verdict for this emit site wins over the event's older flag and
            # over the catalog's per-code default.
            recoverable = not error.fatal
            details["fatal"] = error.fatal
        return self.build(
            raw,
            code=code,
            info=info,
            kind="error",
            name=name,
            message=error.message or None,
            recoverable=recoverable,
            details=details,
        )


class TelnyxWarning(SdkItem):
    """A telnyx.warning: call quality or connectivity."""

    sdk: Literal["telnyx"]
    name: Literal["telnyx.warning"]
    event: TelnyxWarningEvent

    def normalised(self, raw: dict) -> NormalisedEvent:
        warning = self.event.warning
        code, info, name = warning.identity("event.warning")
        return self.build(
            raw,
            code=code,
            info=info,
            kind="warning",
            name=name,
            message=warning.message or None,
            recoverable=True,  # "Warnings are not fatal" (docs/formats.md)
            details=self.event.details() | warning.explanation(),
        )


class TelnyxHangup(SdkItem):
    """A telnyx.notification: only a callUpdate whose call state is hangup is stored."""

    sdk: Literal["telnyx"]
    name: Literal["telnyx.notification"]
    event: TelnyxHangupEvent

    def normalised(self, raw: dict) -> NormalisedEvent:
        call = self.event.call
        details = (
            self.event.details(call_id=call.id)
            | call.details()
            | termination_details(
                call.cause,
                cause_code=call.causeCode,
                sip_code=call.sipCode,
                sip_reason=call.sipReason,
            )
        )
        return self.termination(raw, cause=call.cause, details=details)
