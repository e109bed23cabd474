"""Turn one queue item (docs/formats.md) into a NormalisedEvent, or refuse it with a BadItem.

Pure: no Django, no database, no I/O. The worker calls ``normalise_item(raw_bytes)``; the HTTP
API calls ``normalise(obj, project_id=...)`` and ``derive_event_id(obj)``, and publishes
``QUEUE_ITEM``'s JSON Schema. Each format is a strict pydantic model in the module of its SDK
family; ``QueueItem`` is their union, discriminated by ``type`` and, for an ``sdk_event``, by
its ``sdk`` and ``name``. Every ``BadItem.reason`` is a sentence for the dead-letter list naming
the offending field by its JSON path.

Conventions worth knowing downstream:

- ``project_id`` given as a keyword (HTTP API: the project comes from the URL) is merged into the
  object before anything else, so validation, ``raw`` and the derived event id are exactly those
  of the item ``{**obj, "project_id": project_id}`` that the API enqueues.
- ``event_id`` is the item's own, or ``"sha256:<hex>"`` of its sorted-key JSON; ``derive_event_id``
  returns the same thing without normalising the rest.
- ``details`` by type: ``session_warning`` -> ``{"metrics": {...}}`` (only the valid values given,
  the key only when metrics were sent as an object) plus ``{"metric_problems": {name: reason}}``
  for each value that is no number or out of range (``errorsink.quality.metrics``),
  which never refuses the warning; terminations, a ``session_end`` or a Telnyx hangup, ->
  ``{"termination": {cause, cause_code, sip_code, sip_reason, close_code, duration_ms}}``; SDK
  events add ``sdk`` plus the SDK's own extras under its own names (a Telnyx hangup its
  ``prevState``, and ``cause_default`` where cause and cause_code are the SDK's default).
- ``source``: an explicit ``source`` field wins; SDK events take the catalog's source, else
  client; the runner's items go by code prefix (see ``voicethere``).
- Severity and recoverable come from the event where it carries them, else from the catalog,
  else severity medium for errors and low for warnings and terminations.
- When an item has several faults, the reason names the first in the order the fields are
  declared, the common ``event_id``, ``source``, ``build_id`` and ``customer_context`` last,
  and an SDK event's own fields after the wrapper's. Fields read only when needed (an SDK
  event's session and time where the wrapper has none, a Telnyx name where the code is
  unknown) are checked only once the rest is valid.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from functools import reduce
from typing import Annotated, Any, get_args

import orjson
from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from errorsink.ingest.formats.base import LATE_FIELDS, Item
from errorsink.ingest.formats.gecx import GecxError
from errorsink.ingest.formats.onebudd import OneBuddError
from errorsink.ingest.formats.sentry import SentryEvent
from errorsink.ingest.formats.shared import (
    CODE,
    EVENT_ID,
    MAX_ITEM_BYTES,
    PROJECT_ID,
    BadItem,
    NormalisedEvent,
    checked,
    content_id,
    json_loads_exact,
    json_type,
    reason,
    show,
)
from errorsink.ingest.formats.telnyx import TelnyxError, TelnyxHangup, TelnyxWarning
from errorsink.ingest.formats.turns import Turn
from errorsink.ingest.formats.voicethere import AgentError, SessionEnd, SessionError, SessionWarning

__all__ = [
    "MAX_ITEM_BYTES",
    "QUEUE_ITEM",
    "BadItem",
    "NormalisedEvent",
    "QueueItem",
    "derive_event_id",
    "normalise",
    "normalise_item",
    "parse_item",
]


RUNNER_FORMATS = (SessionError, AgentError, SessionWarning, SessionEnd, Turn)
SDK_FORMATS = (TelnyxError, TelnyxWarning, TelnyxHangup, OneBuddError, GecxError, SentryEvent)


def _literal(model: type[Item], field: str) -> str:
    return get_args(model.model_fields[field].annotation)[0]


def _sdk_tag(value: Any) -> str | None:
    return f"{value.get('sdk')}/{value.get('name')}" if type(value) is dict else None


def _union(types: Iterable[Any]) -> Any:
    return reduce(operator.or_, types)


SdkEventItem = Annotated[
    _union(
        Annotated[model, Tag(f"{_literal(model, 'sdk')}/{_literal(model, 'name')}")]
        for model in SDK_FORMATS
    ),
    Discriminator(_sdk_tag, custom_error_type="unknown_sdk_event", custom_error_message="unknown"),
]
QueueItem = Annotated[_union((*RUNNER_FORMATS, SdkEventItem)), Field(discriminator="type")]
QUEUE_ITEM = TypeAdapter(QueueItem)
_VALIDATE = QUEUE_ITEM.validator.validate_python  # without the adapter's Python wrapper

_TYPES = sorted({_literal(model, "type") for model in (*RUNNER_FORMATS, *SDK_FORMATS)})
_SDK_KEYS = [(_literal(model, "sdk"), _literal(model, "name")) for model in SDK_FORMATS]


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
        obj = json_loads_exact(data)
    except orjson.JSONDecodeError as exc:
        raise BadItem(_json_failure(data, exc)) from None
    if type(obj) is not dict:
        raise BadItem(f"item must be a JSON object, got {json_type(obj)}")
    return obj


def normalise(obj: dict, *, project_id: str | None = None) -> NormalisedEvent:
    """The event one parsed item stands for; ``project_id`` injects or overrides the project."""
    if type(obj) is not dict:
        raise BadItem(f"item must be a JSON object, got {json_type(obj)}")
    if project_id is not None:
        obj = {**obj, "project_id": project_id}
    try:
        item = _VALIDATE(obj)
    except ValidationError as exc:
        raise BadItem(_first_reason(exc, obj)) from None
    return item.normalised(obj)


def normalise_item(data: bytes | bytearray | memoryview | str) -> NormalisedEvent:
    return normalise(parse_item(data))


def derive_event_id(obj: dict) -> str:
    """The id ``normalise`` gives this object: its own ``event_id`` or a hash of its content."""
    value = obj.get("event_id")
    return content_id(obj) if value is None else checked(EVENT_ID, value, "event_id")


# ---------------------------------------------------------------------------------------------
# Reasons


def _first_reason(exc: ValidationError, obj: dict) -> str:
    """The reason for the fault a reader of the item meets first (see ``_rank``)."""
    error = min(exc.errors(include_url=False), key=_rank)
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        return _unknown_type_reason(obj.get("type"))
    if error["type"] == "unknown_sdk_event":
        return _unknown_sdk_event_reason(obj)
    return reason(error, ".".join(map(str, _path(error))))


def _path(error: ErrorDetails) -> tuple:
    loc = error["loc"]  # led by the union's tags: the type, and an sdk_event's "sdk/name"
    return loc[2:] if loc[:1] == ("sdk_event",) else loc[1:]


def _rank(error: ErrorDetails) -> int:
    """An item is read wrapper first, then an SDK event's own fields, then the common fields
    (LATE_FIELDS); within a rank, in the order the fields are declared."""
    path = _path(error)
    if path and path[0] in LATE_FIELDS:
        return 2
    if error["type"] == "refused" or (len(path) > 1 and path[0] == "event"):
        return 1
    return 0


def _unknown_type_reason(item_type: Any) -> str:
    expected = ", ".join(_TYPES)
    if item_type is None:
        return f"item has no 'type' field; expected one of {expected}"
    if type(item_type) is not str:
        return f"field 'type' must be a string, got {json_type(item_type)}"
    return f"unknown type {show(item_type)}; expected one of {expected}"


def _unknown_sdk_event_reason(obj: dict) -> str:
    try:  # the wrapper is read in this order: project, sdk, name
        checked(PROJECT_ID, obj.get("project_id"), "project_id")
        sdk = checked(CODE, obj.get("sdk"), "sdk")
        name = checked(CODE, obj.get("name"), "name")
    except BadItem as exc:
        return exc.reason
    names = [known_name for known_sdk, known_name in _SDK_KEYS if known_sdk == sdk]
    if not names:
        sdks = sorted({known_sdk for known_sdk, _ in _SDK_KEYS})
        return f"unknown sdk {show(sdk)}; expected one of {', '.join(sdks)}"
    return f"unknown name {show(name)} for sdk '{sdk}'; expected one of {', '.join(names)}"


def _json_failure(data: bytes | bytearray | memoryview, exc: Exception) -> str:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        return f"item is not valid UTF-8: {err.reason} at byte {err.start}"
    return f"item is not valid JSON: {exc}"
