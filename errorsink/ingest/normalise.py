"""Turn one queue item (DESIGN section 2) into a NormalisedEvent, or reject it with BadItem.

Pure: no Django, no database, no I/O. The worker calls ``normalise_item(raw_bytes)``; the HTTP
API calls ``normalise(obj, project_id=...)`` or ``derive_event_id(obj)``. Every ``BadItem.reason``
is a sentence meant for the dead-letter list, naming the offending field by its JSON path.

Conventions worth knowing downstream:

- ``project_id`` given as a keyword (HTTP API: the project comes from the URL) is merged into the
  object before anything else, so validation, ``raw`` and the derived event id are exactly those
  of the item ``{**obj, "project_id": project_id}`` that the API enqueues.
- ``event_id`` is the item's own, or ``"sha256:<hex>"`` of its sorted-key JSON; ``derive_event_id``
  returns the same thing without normalising the rest.
- ``details`` by type: ``session_warning`` -> ``{"metrics": {rtt_ms, jitter_ms, packet_loss_pct,
  mos}}`` (only the keys given; the key only when metrics were sent); terminations, whether a
  ``session_end`` or a Telnyx hangup, -> ``{"termination": {cause, cause_code, sip_code,
  sip_reason, close_code, duration_ms}}`` (snake_case, None when absent, read by
  ``Event.termination``) so that one template renders both; SDK events add ``sdk`` plus the
  SDK's own extras under its own names (Telnyx ``sessionId``, ``callId``,
  ``description``, ``causes``, ``solutions``; OneBudd ``fatal``; gecx ``retryable``,
  ``userMessage``, ``developerHint``, ``docsUrl``, ``requestId``, ``correlationId``).
- ``source``: an explicit ``source`` field (agent, runner, provisioning, client) wins; SDK events
  take the catalog's source, else client; other items go by code prefix (AGENT_* agent;
  RUNNER_INTERNAL, SESSION_*, IDLE_* runner; PROVISIONING_* provisioning; WEBRTC_* client) and
  otherwise runner, since runner pods are the queue's producers.
- Severity and recoverable come from the event where it carries them (gecx severity and
  retryable, OneBudd fatal, Telnyx recoverable, session_error recoverable), else from the
  catalog, else severity medium for errors and low for warnings and terminations.
- Over-long strings are cut to their limit including the marker "… [truncated N chars]", so
  they fit their columns; ``event_id`` is the exception (see ``derive_event_id``).
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

from errorsink.catalog import SEVERITIES, SOURCES, CodeInfo, lookup, telnyx_code_for_name

MAX_ITEM_BYTES = 64 * 1024
CODE_MAX = 128
ID_MAX = 200
MESSAGE_MAX = 4_000
STACK_MAX = 32_000
METRIC_KEYS = ("rtt_ms", "jitter_ms", "packet_loss_pct", "mos")


class BadItem(Exception):
    """An item that cannot become an event; ``reason`` says why in one sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NormalisedEvent:
    project_id: str
    session_id: str | None
    event_id: str
    kind: str
    code: str
    name: str
    message: str
    occurred_at: datetime | None
    source: str
    severity: str
    recoverable: bool | None
    build_id: str | None
    stack: str | None
    customer_context: dict | None
    details: dict
    item_type: str
    raw: dict


# ---------------------------------------------------------------------------------------------
# Entry points


def parse_item(data: bytes | bytearray | memoryview | str) -> dict:
    """The JSON object of one queue item; BadItem when too large, not UTF-8, not JSON or not
    an object."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadItem(
                f"item is not valid UTF-8: {exc.reason} at character {exc.start}"
            ) from None
    if len(data) > MAX_ITEM_BYTES:
        raise BadItem(f"item is {len(data)} bytes, over the limit of {MAX_ITEM_BYTES} (64 KiB)")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadItem(_json_failure(data, exc)) from None
    if type(obj) is not dict:
        raise BadItem(f"item must be a JSON object, got {_json_type(obj)}")
    return obj


def normalise(obj: dict, *, project_id: str | None = None) -> NormalisedEvent:
    """The event one parsed item stands for; ``project_id`` injects or overrides the project."""
    if type(obj) is not dict:
        raise BadItem(f"item must be a JSON object, got {_json_type(obj)}")
    if project_id is not None:
        obj = {**obj, "project_id": project_id}
    item_type = obj.get("type")
    handler = _HANDLERS.get(item_type) if type(item_type) is str else None
    if handler is None:
        raise BadItem(_unknown_type_reason(item_type))
    return handler(obj, _project_id(obj.get("project_id")))


def normalise_item(data: bytes | bytearray | memoryview | str) -> NormalisedEvent:
    return normalise(parse_item(data))


def derive_event_id(obj: dict) -> str:
    """The id ``normalise`` gives this object: its own ``event_id`` or a hash of its content."""
    value = obj.get("event_id")
    if value is None:
        try:
            canonical = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as exc:
            raise BadItem(f"item cannot be serialised as JSON: {exc}") from None
        return "sha256:" + hashlib.sha256(canonical).hexdigest()
    if type(value) is not str:
        raise _wrong_type("event_id", "a string", value)
    if not value:
        raise BadItem("field 'event_id' must not be empty")
    if len(value) > ID_MAX:
        # Rejected, not truncated: two long ids sharing a prefix would become one and the
        # second event would be dropped as a duplicate.
        raise BadItem(f"field 'event_id' must be at most {ID_MAX} characters, got {len(value)}")
    return value


# ---------------------------------------------------------------------------------------------
# One function per item type


def _session_error(obj: dict, project_id: str) -> NormalisedEvent:
    code = _required_str(obj, "code", CODE_MAX)
    info = lookup(code, sdk="voicethere")
    recoverable = _optional_bool(obj, "recoverable")
    if recoverable is None and info is not None:
        recoverable = info.recoverable
    return _event(
        obj,
        project_id,
        kind=info.kind if info else "error",
        code=code,
        name=info.name if info else code,
        message=_required_str(obj, "message", MESSAGE_MAX, allow_empty=True),
        session_id=_required_str(obj, "session_id", ID_MAX),
        occurred_at=_wrapper_time(obj),
        source=_source_for_code(code),
        severity=info.severity if info else "medium",
        recoverable=recoverable,
        details={},
        stack=_optional_str(obj, "stack", STACK_MAX),
    )


def _agent_error(obj: dict, project_id: str) -> NormalisedEvent:
    # Legacy runners only ever sent this when the agent child crashed (seed 000).
    return _event(
        obj,
        project_id,
        kind="error",
        code=_AGENT_CHILD_CRASHED.code,
        name=_AGENT_CHILD_CRASHED.name,
        message=_required_str(obj, "message", MESSAGE_MAX, allow_empty=True),
        session_id=_optional_str(obj, "session_id", ID_MAX, allow_empty=False),
        occurred_at=_wrapper_time(obj),
        source=_AGENT_CHILD_CRASHED.source,
        severity=_AGENT_CHILD_CRASHED.severity,
        recoverable=False,
        details={},
    )


def _session_warning(obj: dict, project_id: str) -> NormalisedEvent:
    code = _telnyx_style_code(obj.get("code"), "code")
    info = lookup(code, sdk="telnyx")
    details = {}
    metrics = _metrics(obj.get("metrics"))
    if metrics is not None:
        details["metrics"] = metrics
    return _event(
        obj,
        project_id,
        kind="warning",
        code=code,
        name=info.name if info else code,
        message=_optional_str(obj, "message", MESSAGE_MAX) or _default_message(info, code),
        session_id=_required_str(obj, "session_id", ID_MAX),
        occurred_at=_wrapper_time(obj),
        source=_source_for_code(code),
        severity=info.severity if info else "low",
        recoverable=True,  # a warning describes a call that is still going
        details=details,
    )


def _session_end(obj: dict, project_id: str) -> NormalisedEvent:
    cause = _required_str(obj, "cause", CODE_MAX)
    details = _termination_details(
        cause,
        cause_code=_optional_int(obj, "cause_code"),
        sip_code=_optional_int(obj, "sip_code"),
        sip_reason=_optional_str(obj, "sip_reason"),
        close_code=_optional_int(obj, "close_code"),
        duration_ms=_optional_number(obj, "duration_ms"),
    )
    return _termination(
        obj,
        project_id,
        cause=cause,
        session_id=_required_str(obj, "session_id", ID_MAX),
        occurred_at=_wrapper_time(obj),
        source=_source_for_code(cause),
        details=details,
    )


def _sdk_event(obj: dict, project_id: str) -> NormalisedEvent:
    sdk = _required_str(obj, "sdk", CODE_MAX)
    name = _required_str(obj, "name", CODE_MAX)
    handler = _SDK_HANDLERS.get((sdk, name))
    if handler is None:
        raise BadItem(_unknown_sdk_event_reason(sdk, name))
    event = _required_object(obj, "event")
    # The wrapper is what errorsink's producer knows (the orchestrator's session, its clock);
    # the SDK's own fields are the fallback.
    session_id = _optional_str(obj, "session_id", ID_MAX, allow_empty=False)
    if session_id is None:
        session_id = _event_session_id(event)
    occurred_at = _wrapper_time(obj)
    if occurred_at is None:
        occurred_at = _event_time(event.get("timestamp"), "event.timestamp")
    return handler(obj, project_id, event, session_id, occurred_at)


# ---------------------------------------------------------------------------------------------
# One function per SDK event


def _telnyx_error(
    obj: dict, project_id: str, event: dict, session_id: str | None, occurred_at: datetime | None
) -> NormalisedEvent:
    error = _required_object(event, "error", "event.error")
    code, info, name = _telnyx_code_info(error, "event.error")
    recoverable = _optional_bool(event, "recoverable", "event.recoverable")
    return _event(
        obj,
        project_id,
        kind="error",
        code=code,
        name=name,
        message=_optional_str(error, "message", MESSAGE_MAX, path="event.error.message")
        or _default_message(info, code),
        session_id=session_id,
        occurred_at=occurred_at,
        source=_sdk_source(info),
        severity=info.severity if info else "medium",
        recoverable=bool(recoverable),  # absent means false (seed 004)
        details=_telnyx_details(event),
    )


def _telnyx_warning(
    obj: dict, project_id: str, event: dict, session_id: str | None, occurred_at: datetime | None
) -> NormalisedEvent:
    warning = _required_object(event, "warning", "event.warning")
    code, info, name = _telnyx_code_info(warning, "event.warning")
    details = _telnyx_details(event)
    for key in ("description", "causes", "solutions"):
        if warning.get(key) is not None:
            details[key] = warning[key]
    return _event(
        obj,
        project_id,
        kind="warning",
        code=code,
        name=name,
        message=_optional_str(warning, "message", MESSAGE_MAX, path="event.warning.message")
        or _default_message(info, code),
        session_id=session_id,
        occurred_at=occurred_at,
        source=_sdk_source(info),
        severity=info.severity if info else "low",
        recoverable=True,  # "Warnings are not fatal" (seed 004)
        details=details,
    )


def _telnyx_notification(
    obj: dict, project_id: str, event: dict, session_id: str | None, occurred_at: datetime | None
) -> NormalisedEvent:
    # Only a hangup says how a call ended; the other notifications are UI lifecycle noise or
    # duplicates of structured warnings/errors, so they are refused loudly rather than stored.
    if event.get("type") != "callUpdate":
        raise BadItem(
            f"telnyx.notification of type {_show(event.get('type'))} is not stored; "
            "only a callUpdate whose call.state is 'hangup' is"
        )
    call = _required_object(event, "call", "event.call")
    if call.get("state") != "hangup":
        raise BadItem(
            f"telnyx callUpdate with call.state {_show(call.get('state'))} is not stored; "
            "only 'hangup' is"
        )
    cause = _required_str(call, "cause", CODE_MAX, path="event.call.cause")
    details = _telnyx_details(event, call_id=call.get("id"))
    details |= _termination_details(
        cause,
        cause_code=_optional_int(call, "causeCode", "event.call.causeCode"),
        sip_code=_optional_int(call, "sipCode", "event.call.sipCode"),
        sip_reason=_optional_str(call, "sipReason", path="event.call.sipReason"),
    )
    return _termination(
        obj,
        project_id,
        cause=cause,
        session_id=session_id,
        occurred_at=occurred_at,
        source=None,
        details=details,
    )


def _onebudd_error(
    obj: dict, project_id: str, event: dict, session_id: str | None, occurred_at: datetime | None
) -> NormalisedEvent:
    payload = _required_object(event, "payload", "event.payload")
    code = _required_str(payload, "code", CODE_MAX, path="event.payload.code")
    info = lookup(code, sdk="onebudd", fallback=False)
    fatal = _optional_bool(payload, "fatal", "event.payload.fatal")
    if fatal is not None:
        # The event's own flag is the truth for this occurrence; the catalog rule is the same.
        severity, recoverable = ("high" if fatal else "medium"), not fatal
    elif info is not None:
        severity, recoverable = info.severity, info.recoverable
    else:
        severity, recoverable = "medium", None
    return _event(
        obj,
        project_id,
        kind=info.kind if info else "error",
        code=code,
        name=code,
        message=_optional_str(payload, "message", MESSAGE_MAX, path="event.payload.message")
        or _default_message(info, code),
        session_id=session_id,
        occurred_at=occurred_at,
        source=_sdk_source(info),
        severity=severity,
        recoverable=recoverable,
        details={"sdk": "onebudd", "fatal": fatal},
    )


def _gecx_error(
    obj: dict, project_id: str, event: dict, session_id: str | None, occurred_at: datetime | None
) -> NormalisedEvent:
    code = _required_str(event, "code", CODE_MAX, path="event.code")
    info = lookup(code, sdk="gecx", fallback=False)
    retryable = _optional_bool(event, "retryable", "event.retryable")
    if retryable is None and info is not None:
        retryable = info.retryable
    user_message = _optional_str(event, "userMessage", path="event.userMessage")
    details = {
        "sdk": "gecx",
        "retryable": retryable,
        "userMessage": user_message,
        "developerHint": _optional_str(event, "developerHint", path="event.developerHint"),
        "docsUrl": _optional_str(event, "docsUrl", path="event.docsUrl"),
    }
    for key in ("requestId", "correlationId"):
        if event.get(key) is not None:
            details[key] = event[key]
    message = _optional_str(event, "message", MESSAGE_MAX, path="event.message") or user_message
    return _event(
        obj,
        project_id,
        kind=info.kind if info else "error",
        code=code,
        name=code,
        message=_clip(message, MESSAGE_MAX) if message else _default_message(info, code),
        session_id=session_id,
        occurred_at=occurred_at,
        source=_sdk_source(info),
        severity=_optional_severity(event, "event.severity")
        or (info.severity if info else "medium"),
        recoverable=retryable,
        details=details,
        stack=_optional_str(event, "stack", STACK_MAX, path="event.stack"),
    )


# ---------------------------------------------------------------------------------------------
# Shared builders


def _event(
    obj: dict, project_id: str, *, source: str, stack: str | None = None, **fields: Any
) -> NormalisedEvent:
    return NormalisedEvent(
        project_id=project_id,
        event_id=derive_event_id(obj),
        source=_explicit_source(obj) or source,
        build_id=_optional_str(obj, "build_id", ID_MAX),
        stack=stack,
        customer_context=_optional_object(obj, "customer_context"),
        item_type=obj["type"],
        raw=obj,
        **fields,
    )


def _termination(
    obj: dict,
    project_id: str,
    *,
    cause: str,
    session_id: str | None,
    occurred_at: datetime | None,
    source: str | None,
    details: dict,
) -> NormalisedEvent:
    info = lookup(cause, sdk="telnyx")
    return _event(
        obj,
        project_id,
        kind="termination",
        code=cause,
        name=info.name if info else cause,
        message=_default_message(info, cause),
        session_id=session_id,
        occurred_at=occurred_at,
        source=source or _sdk_source(info),
        severity=info.severity if info else "low",
        recoverable=info.recoverable if info else None,
        details=details,
    )


def _termination_details(
    cause: str,
    *,
    cause_code: int | None,
    sip_code: int | None,
    sip_reason: str | None,
    close_code: int | None = None,
    duration_ms: float | None = None,
) -> dict:
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


def _telnyx_details(event: dict, *, call_id: Any = None) -> dict:
    details: dict[str, Any] = {"sdk": "telnyx"}
    for key in ("sessionId", "callId"):
        if event.get(key) is not None:
            details[key] = event[key]
    if call_id is not None:
        details["callId"] = call_id
    return details


def _telnyx_code_info(obj: dict, path: str) -> tuple[str, CodeInfo | None, str]:
    """Code, catalog entry and name of a Telnyx error or warning; the name alone will do."""
    value = obj.get("code")
    code = _telnyx_style_code(obj.get("name") if value is None else value, f"{path}.code")
    info = lookup(code, sdk="telnyx", fallback=False)
    if info is not None:
        return code, info, info.name
    name = _optional_str(obj, "name", CODE_MAX, path=f"{path}.name")
    return code, None, name or code


def _telnyx_style_code(value: Any, path: str) -> str:
    """31002, "31002" or "HIGH_JITTER" -> "31002"; unknown names are kept as they came."""
    if type(value) is int:
        if value < 0:
            raise BadItem(f"field '{path}' must not be negative, got {value}")
        return str(value)
    if type(value) is str:
        if not value:
            raise BadItem(f"field '{path}' must not be empty")
        if value.isdigit() and value.isascii():
            return _clip(value, CODE_MAX)
        return telnyx_code_for_name(value) or _clip(value, CODE_MAX)
    if value is None:
        raise BadItem(f"missing required field '{path}'")
    raise _wrong_type(path, "a code name or number", value)


def _metrics(value: Any) -> dict | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise _wrong_type("metrics", "an object", value)
    metrics = {}
    for key in METRIC_KEYS:  # other keys are dropped: the rollups know only these
        number = value.get(key)
        if number is None:
            continue
        if type(number) is not int and type(number) is not float:
            raise _wrong_type(f"metrics.{key}", "a number", number)
        metrics[key] = number
    return metrics


# ---------------------------------------------------------------------------------------------
# Field readers: each names the field's JSON path in its reason


def _required_str(
    obj: dict, key: str, limit: int, *, path: str | None = None, allow_empty: bool = False
) -> str:
    value = obj.get(key)
    if value is None:
        raise BadItem(f"missing required field '{path or key}'")
    if type(value) is not str:
        raise _wrong_type(path or key, "a string", value)
    if not value and not allow_empty:
        raise BadItem(f"field '{path or key}' must not be empty")
    return _clip(value, limit)


def _optional_str(
    obj: dict,
    key: str,
    limit: int | None = None,
    *,
    path: str | None = None,
    allow_empty: bool = True,
) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise _wrong_type(path or key, "a string", value)
    if not value and not allow_empty:
        raise BadItem(f"field '{path or key}' must not be empty")
    return _clip(value, limit) if limit else value


def _optional_bool(obj: dict, key: str, path: str | None = None) -> bool | None:
    value = obj.get(key)
    if value is None or type(value) is bool:
        return value
    raise _wrong_type(path or key, "a boolean", value)


def _optional_int(obj: dict, key: str, path: str | None = None) -> int | None:
    value = obj.get(key)
    if value is None or type(value) is int:
        return value
    raise _wrong_type(path or key, "an integer", value)


def _optional_number(obj: dict, key: str, path: str | None = None) -> int | float | None:
    value = obj.get(key)
    if value is None or type(value) is int or type(value) is float:
        return value
    raise _wrong_type(path or key, "a number", value)


def _optional_object(obj: dict, key: str, path: str | None = None) -> dict | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise _wrong_type(path or key, "an object", value)


def _required_object(obj: dict, key: str, path: str | None = None) -> dict:
    value = obj.get(key)
    if value is None:
        raise BadItem(f"missing required field '{path or key}'")
    if type(value) is not dict:
        raise _wrong_type(path or key, "an object", value)
    return value


def _optional_severity(obj: dict, path: str) -> str | None:
    value = _optional_str(obj, "severity", path=path)
    if value is None or value in SEVERITIES:
        return value
    raise BadItem(f"field '{path}' must be one of {', '.join(SEVERITIES)}, got {_show(value)}")


def _explicit_source(obj: dict) -> str | None:
    value = _optional_str(obj, "source")
    if value is None or value in SOURCES:
        return value
    raise BadItem(f"field 'source' must be one of {', '.join(SOURCES)}, got {_show(value)}")


@lru_cache(maxsize=4096)  # a handful of projects send all the traffic; UUID() is the costly bit
def _canonical_uuid(value: str) -> str:
    return str(UUID(value))


def _project_id(value: Any) -> str:
    if value is None:
        raise BadItem("missing required field 'project_id'")
    if type(value) is not str:
        raise _wrong_type("project_id", "a UUID string", value)
    try:
        return _canonical_uuid(value)
    except ValueError:
        raise BadItem(f"field 'project_id' must be a UUID, got {_show(value)}") from None


def _event_session_id(event: dict) -> str | None:
    for key in ("sessionId", "session_id"):
        session_id = _optional_str(event, key, ID_MAX, path=f"event.{key}", allow_empty=False)
        if session_id is not None:
            return session_id
    return None


def _wrapper_time(obj: dict) -> datetime | None:
    value = obj.get("occurred_at")
    if value is None:
        return None
    if type(value) is not str:
        raise _wrong_type("occurred_at", "an ISO 8601 string", value)
    return _iso_time(value, "occurred_at")


def _event_time(value: Any, path: str) -> datetime | None:
    """An SDK event's own time: epoch milliseconds (OneBudd's ``timestamp``) or ISO 8601."""
    if value is None:
        return None
    if type(value) is str:
        return _iso_time(value, path)
    if type(value) is not int and type(value) is not float:
        raise _wrong_type(path, "epoch milliseconds or an ISO 8601 string", value)
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadItem(f"field '{path}' is not a usable epoch-milliseconds time: {value}") from None


def _iso_time(value: str, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadItem(f"field '{path}' is not an ISO 8601 time: {_show(value)}") from None
    if parsed.tzinfo is None:
        # A time without an offset could be any zone; guessing would misplace the event.
        raise BadItem(f"field '{path}' must include a time zone (Z or +hh:mm): {_show(value)}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadItem(f"field '{path}' is out of range in UTC: {_show(value)}") from None


def _source_for_code(code: str) -> str:
    for prefix, source in _SOURCE_BY_PREFIX:
        if code.startswith(prefix):
            return source
    return "runner"


def _sdk_source(info: CodeInfo | None) -> str:
    return info.source if info is not None else "client"


def _default_message(info: CodeInfo | None, code: str) -> str:
    return info.description if info is not None else code


# ---------------------------------------------------------------------------------------------
# Small text helpers


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marker included."""
    if len(text) <= limit:
        return text
    kept = limit
    while True:  # at most three turns: the marker's length depends on the count it shows
        marker = f"… [truncated {len(text) - kept} chars]"
        if kept + len(marker) <= limit:
            return text[:kept] + marker
        kept = limit - len(marker)


_JSON_TYPE_NAMES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(path: str, expected: str, value: Any) -> BadItem:
    return BadItem(f"field '{path}' must be {expected}, got {_json_type(value)}")


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for a reason sentence."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_failure(data: bytes | bytearray | memoryview, exc: Exception) -> str:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        return f"item is not valid UTF-8: {err.reason} at byte {err.start}"
    return f"item is not valid JSON: {exc}"


def _unknown_type_reason(item_type: Any) -> str:
    expected = ", ".join(sorted(_HANDLERS))
    if item_type is None:
        return f"item has no 'type' field; expected one of {expected}"
    if type(item_type) is not str:
        return str(_wrong_type("type", "a string", item_type))
    return f"unknown type {_show(item_type)}; expected one of {expected}"


def _unknown_sdk_event_reason(sdk: str, name: str) -> str:
    names = [known_name for known_sdk, known_name in _SDK_HANDLERS if known_sdk == sdk]
    if not names:
        sdks = sorted({known_sdk for known_sdk, _ in _SDK_HANDLERS})
        return f"unknown sdk {_show(sdk)}; expected one of {', '.join(sdks)}"
    return f"unknown name {_show(name)} for sdk '{sdk}'; expected one of {', '.join(names)}"


# ---------------------------------------------------------------------------------------------
# Dispatch tables (after the functions they name)

_AGENT_CHILD_CRASHED = lookup("AGENT_CHILD_CRASHED", sdk="voicethere", fallback=False)

_SOURCE_BY_PREFIX = (
    ("AGENT_", "agent"),
    ("RUNNER_INTERNAL", "runner"),
    ("SESSION_", "runner"),
    ("IDLE_", "runner"),
    ("PROVISIONING_", "provisioning"),
    ("WEBRTC_", "client"),
)

_HANDLERS = {
    "session_error": _session_error,
    "agent_error": _agent_error,
    "session_warning": _session_warning,
    "session_end": _session_end,
    "sdk_event": _sdk_event,
}

_SDK_HANDLERS = {
    ("telnyx", "telnyx.error"): _telnyx_error,
    ("telnyx", "telnyx.warning"): _telnyx_warning,
    ("telnyx", "telnyx.notification"): _telnyx_notification,
    ("onebudd", "error"): _onebudd_error,
    ("gecx", "ChatSdkError"): _gecx_error,
}
