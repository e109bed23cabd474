"""What every queue format shares: the event an item becomes, BadItem, the strict field types, and
the wording of a rejection.

Field types are strict (a number is never read as a string, nor an integer as a boolean) and
an explicit null is read as absence. Over-long strings are cut to their column, marker included,
rather than rejected: validating them costs a Python call only when they are too long.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_core import core_schema as cs

from errorsink.catalog import SEVERITIES, SOURCES

MAX_ITEM_BYTES = 64 * 1024
CODE_MAX = 128
ID_MAX = 200
MESSAGE_MAX = 4_000
STACK_MAX = 32_000
STRICT = ConfigDict(strict=True, extra="ignore")


class BadItem(Exception):
    """An item that cannot become an event; ``reason`` says why in one sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class NormalisedEvent:
    """One item as the event it stands for. Not frozen: a frozen dataclass takes longer to build
    than the item takes to validate, and nothing changes an event once it is built."""

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
    fingerprint: list[str] | None = None  # the item's own grouping, if it sets one


# ---------------------------------------------------------------------------------------------
# Small text helpers


def clip(text: str, limit: int) -> str:
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


def json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A short JSON rendering of a bad value for a reason sentence."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# Errors a field type raises; ``reason`` turns them, and pydantic's own, into one sentence.


def wrong_type(expected: str) -> PydanticCustomError:
    return PydanticCustomError("wrong_type", "must be {expected}", {"expected": expected})


def bad_field(problem: str) -> PydanticCustomError:
    """``problem`` completes the sentence "field '<path>' ..."."""
    return PydanticCustomError("bad_field", "{problem}", {"problem": problem})


def refused(reason: str) -> PydanticCustomError:
    """A reason about the item as a whole, reported as it is."""
    return PydanticCustomError("refused", "{reason}", {"reason": reason})


_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "int_type": "an integer",
    "model_type": "an object",
}


def reason(error: ErrorDetails, path: str) -> str:
    """One validation error as a dead-letter reason naming the field by its JSON path."""
    kind, value, context = error["type"], error["input"], error.get("ctx") or {}
    if kind == "refused":
        return context["reason"]
    if kind == "missing" or value is None:
        return f"missing required field '{path}'"
    if kind == "wrong_type" or kind in _EXPECTED:
        expected = context["expected"] if kind == "wrong_type" else _EXPECTED[kind]
        return f"field '{path}' must be {expected}, got {json_type(value)}"
    if kind == "string_too_short":
        return f"field '{path}' must not be empty"
    if kind == "string_too_long":
        limit = context["max_length"]
        return f"field '{path}' must be at most {limit} characters, got {len(value)}"
    if kind == "bad_field":
        return f"field '{path}' {context['problem']}"
    return f"field '{path}' is invalid: {error['msg']}"


def checked[T](adapter: TypeAdapter[T], value: Any, path: str) -> T:
    """``value`` validated as the field at ``path``; for the fields read only when needed."""
    try:
        return adapter.validator.validate_python(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise BadItem(reason(error, ".".join([path, *map(str, error["loc"])]))) from None


# ---------------------------------------------------------------------------------------------
# Field types


@dataclass(frozen=True, slots=True)
class Clipped:
    """A string cut to ``limit`` characters (marker included); ``empty=False`` refuses ""."""

    limit: int
    empty: bool = True

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> cs.CoreSchema:
        text = cs.str_schema(strict=True, min_length=None if self.empty else 1)
        fits = cs.str_schema(max_length=self.limit)
        cut = cs.no_info_plain_validator_function(partial(clip, limit=self.limit))
        return cs.chain_schema([text, cs.union_schema([fits, cut], mode="left_to_right")])

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict:
        json_schema = {"type": "string", "description": f"Cut to {self.limit} characters."}
        return json_schema if self.empty else {**json_schema, "minLength": 1}


def _number(value: Any) -> int | float:
    # An integer stays an integer (a float would change the stored JSON); a boolean is no number.
    if type(value) is int or type(value) is float:
        return value
    raise wrong_type("a number")


@lru_cache(maxsize=4096)  # a handful of projects send all the traffic; UUID() is the costly bit
def _canonical_uuid(value: str) -> str:
    return str(UUID(value))


def _project_id(value: Any) -> str:
    if type(value) is not str:
        raise wrong_type("a UUID string")
    try:
        return _canonical_uuid(value)
    except ValueError:
        raise bad_field(f"must be a UUID, got {show(value)}") from None


def iso_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_field(f"is not an ISO 8601 time: {show(value)}") from None
    if parsed.tzinfo is None:
        # A time without an offset could be any zone; guessing would misplace the event.
        raise bad_field(f"must include a time zone (Z or +hh:mm): {show(value)}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise bad_field(f"is out of range in UTC: {show(value)}") from None


def _time(value: Any) -> datetime:
    if type(value) is not str:
        raise wrong_type("an ISO 8601 string")
    return iso_time(value)


def _sdk_time(value: Any) -> datetime:
    if type(value) is str:
        return iso_time(value)
    if type(value) is not int and type(value) is not float:
        raise wrong_type("epoch milliseconds or an ISO 8601 string")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise bad_field(f"is not a usable epoch-milliseconds time: {value}") from None


def _one_of(choices: tuple[str, ...], value: Any) -> str:
    if type(value) is not str:
        raise wrong_type("a string")
    if value not in choices:
        raise bad_field(f"must be one of {', '.join(choices)}, got {show(value)}")
    return value


def _object(value: Any) -> dict:
    if type(value) is dict:
        return value
    raise wrong_type("an object")


def _choice(choices: tuple[str, ...]) -> Any:
    return Annotated[
        str,
        PlainValidator(partial(_one_of, choices)),
        WithJsonSchema({"type": "string", "enum": list(choices)}),
    ]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _identifier(value: Any) -> str:
    """An event or session id, kept exactly or refused, never changed: a cut id would merge
    two sessions sharing a prefix (or drop the second event as a duplicate), an id of spaces
    would make unrelated items one, and PostgreSQL cannot store a NUL. The API and the queue
    both validate with this, so what the API accepts the worker stores."""
    if type(value) is not str:
        raise wrong_type("a string")
    if not value.strip():
        raise bad_field(f"must not be empty or only spaces, got {show(value)}")
    if len(value) > ID_MAX:
        raise bad_field(f"must be at most {ID_MAX} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise bad_field(f"must not contain control characters (NUL, newline…), got {show(value)}")
    return value


Identifier = Annotated[
    str,
    PlainValidator(_identifier),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": ID_MAX,
                    "description": "Kept exactly: not only spaces, no control characters."}),
]  # fmt: skip
# Refused past CODE_MAX rather than cut: two long codes cut to one prefix would become one code
# (and one issue) on the dashboard.
Code = Annotated[str, Field(strict=True, min_length=1, max_length=CODE_MAX)]
Message = Annotated[str, Clipped(MESSAGE_MAX)]
SessionId = Identifier
BuildId = Annotated[str, Clipped(ID_MAX)]
Stack = Annotated[str, Clipped(STACK_MAX)]
EventId = Identifier
# An item's own grouping (docs/issues.md), as in Sentry: refused rather than cut, since a
# cut value could group two different errors together.
FINGERPRINT_PARTS_MAX = 16
Fingerprint = Annotated[
    list[Annotated[str, StringConstraints(strict=True, min_length=1, max_length=ID_MAX)]],
    Field(min_length=1, max_length=FINGERPRINT_PARTS_MAX),
]
Text = StrictStr  # kept whole: free text that goes into details, not into a sized column
Flag = StrictBool
Integer = StrictInt
Number = Annotated[int | float, PlainValidator(_number), WithJsonSchema({"type": "number"})]
JsonObject = Annotated[dict, PlainValidator(_object), WithJsonSchema({"type": "object"})]
ProjectId = Annotated[
    str, PlainValidator(_project_id), WithJsonSchema({"type": "string", "format": "uuid"})
]
Time = Annotated[
    datetime,
    PlainValidator(_time),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "With its zone."}),
]
SdkTime = Annotated[  # an SDK event's own time: OneBudd's ``timestamp`` is epoch milliseconds
    datetime,
    PlainValidator(_sdk_time),
    WithJsonSchema({"type": ["number", "string"], "description": "Epoch ms or ISO 8601."}),
]
Source = _choice(SOURCES)
Severity = _choice(SEVERITIES)

EVENT_ID = TypeAdapter(EventId)
PROJECT_ID = TypeAdapter(ProjectId)
CODE = TypeAdapter(Code)


def content_id(obj: dict) -> str:
    """The id of an item without its own ``event_id``: a hash of its sorted-key JSON."""
    try:
        canonical = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise BadItem(f"item cannot be serialised as JSON: {exc}") from None
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


# orjson reads an integer past 64 bits as a float, silently dropping digits; such a number
# needs 20 digits or more, so only a text holding a run that long is read again exactly, and
# the item is then refused by name (BadItem) instead of stored rounded. The run is found by
# mapping every digit to "0" and looking for twenty: a tenth of a regular expression's time,
# which cost three times the parse itself.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20


def json_loads_exact(data: bytes) -> Any:
    """Parse JSON; an integer past 64 bits raises BadItem rather than becoming a float."""
    value = orjson.loads(data)
    if _TWENTY_DIGITS in bytes(data).translate(_DIGITS_AS_ZERO):
        try:
            _refuse_huge_integers(json.loads(data))
        except RecursionError:
            raise BadItem("item is nested too deeply to be checked") from None
    return value


def _refuse_huge_integers(value: Any, path: str = "") -> None:
    if type(value) is int and not -(2**63) <= value < 2**64:
        raise BadItem(f"field {path.lstrip('.')!r} is an integer past 64 bits, which cannot be "
                      "stored exactly; send it as a string")  # fmt: skip
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_huge_integers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_huge_integers(item, f"{path}[{index}]")
