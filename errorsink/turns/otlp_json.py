"""OTLP's JSON encoding read straight into span records (docs/turns.md), for the fields turn
extraction reads: the resource's and each span's attributes, names, ids and times.

Why not protobuf's own JSON parser (``json_format``): it walks the whole message field by
field in Python, 338 µs for one five-span turn against 1.6 µs for the same export in protobuf,
which held OTLP/JSON requests to 0.27 of the bare app (docs/benchmarks.md). OTLP's JSON is
protobuf's JSON mapping with hex ids: fields in lowerCamelCase (the proto's own snake_case names
are accepted too, as protobuf's parser accepts them), 64-bit integers as strings or numbers,
unknown fields ignored. Whatever is not of the shape the mapping allows is a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

import orjson

from errorsink.turns.otlp import MAX_SPANS, OtlpRefused, Span, too_many_spans

_NOT_A_REQUEST = "body is not an OTLP ExportTraceServiceRequest"


def json_spans(body: bytes) -> list[Span]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpRefused(400, f"body is not JSON: {exc}") from None
    spans = []
    for resource_spans in _list(request, "resourceSpans", "resource_spans", where="body"):
        resource = _object(_field(resource_spans, "resource", "resource") or {}, "resource")
        resource_attributes = attributes(_field(resource, "attributes", "attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans",
                                 where="resourceSpans[]"):  # fmt: skip
            for span in _list(scope_spans, "spans", "spans", where="scopeSpans[]"):
                if len(spans) == MAX_SPANS:
                    raise too_many_spans()
                spans.append(_span(_object(span, "span"), resource_attributes))
    return spans


def _span(span: dict, resource: dict[str, Any]) -> Span:
    return Span(
        _text(_field(span, "name", "name") or "", "span.name"),
        _hex_id(_field(span, "traceId", "trace_id"), "traceId"),
        _hex_id(_field(span, "spanId", "span_id"), "spanId"),
        _hex_id(_field(span, "parentSpanId", "parent_span_id"), "parentSpanId"),
        _uint64(_field(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        _uint64(_field(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        attributes(_field(span, "attributes", "attributes")),
        resource,
    )


def attributes(key_values: Any) -> dict[str, Any]:
    if key_values is None:
        return {}
    if type(key_values) is not list:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: attributes must be a list")
    found = {}
    for pair in key_values:
        pair = _object(pair, "attribute")
        key = _text(pair.get("key", ""), "attribute key")
        found[key] = _any_value(pair.get("value"), key)
    return found


def _any_value(value: Any, key: str) -> Any:
    """An AnyValue: its one set field as a Python value (None when none is set)."""
    if value is None:
        return None
    value = _object(value, f"attribute {key!r}")
    for name, read in _VALUE_READERS:
        if name in value:
            return read(value[name], key)
    return None


def _string(value: Any, key: str) -> str:
    return _text(value, f"attribute {key!r}")


def _bool(value: Any, key: str) -> bool:
    if type(value) is not bool:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: attribute {key!r} boolValue must be a boolean")
    return value


def _int(value: Any, key: str) -> int:
    return _integer(value, f"attribute {key!r}", low=-(2**63), high=2**63)


def _double(value: Any, key: str) -> float:
    if type(value) in (int, float):
        return float(value)
    if value in ("NaN", "Infinity", "-Infinity"):  # protobuf's JSON names of these
        return float(value.replace("Infinity", "inf")) if value != "NaN" else math.nan
    raise OtlpRefused(400, f"{_NOT_A_REQUEST}: attribute {key!r} doubleValue must be a number")


def _array(value: Any, key: str) -> list:
    values = _object(value, f"attribute {key!r}").get("values") or []
    if type(values) is not list:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: attribute {key!r} values must be a list")
    return [_any_value(item, key) for item in values]


def _kvlist(value: Any, key: str) -> dict:
    return attributes(_object(value, f"attribute {key!r}").get("values"))


def _bytes(value: Any, key: str) -> str:
    try:
        return base64.b64decode(_text(value, f"attribute {key!r}"), validate=True).hex()
    except binascii.Error:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: attribute {key!r} is no base64") from None


_VALUE_READERS = (("stringValue", _string), ("string_value", _string), ("boolValue", _bool),
                  ("bool_value", _bool), ("intValue", _int), ("int_value", _int),
                  ("doubleValue", _double), ("double_value", _double),
                  ("arrayValue", _array), ("array_value", _array),
                  ("kvlistValue", _kvlist), ("kvlist_value", _kvlist),
                  ("bytesValue", _bytes), ("bytes_value", _bytes))  # fmt: skip


def _field(obj: dict, camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(obj: Any, camel: str, snake: str, *, where: str) -> list:
    value = _field(_object(obj, where), camel, snake)
    if value is None:
        return []
    if type(value) is not list:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {camel} must be a list")
    return value


def _object(value: Any, what: str) -> dict:
    if type(value) is not dict:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {what} must be an object")
    return value


def _text(value: Any, what: str) -> str:
    if type(value) is not str:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {what} must be a string")
    return value


def _hex_id(value: Any, name: str) -> str:
    if value is None or value == "":
        return ""
    text = _text(value, name)
    try:
        return bytes.fromhex(text).hex()
    except ValueError:
        raise OtlpRefused(400, f"{name} must be hex, got {text[:40]!r}") from None


def _uint64(value: Any, name: str) -> int:
    return 0 if value is None else _integer(value, name, low=0, high=2**64)


def _integer(value: Any, what: str, *, low: int, high: int) -> int:
    """A 64-bit integer, as a JSON number or a decimal string (how OTLP's JSON writes them)."""
    if type(value) is str and _DECIMAL.fullmatch(value):
        value = int(value)
    if type(value) is not int or not low <= value < high:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {what} must be a 64-bit integer")
    return value


_DECIMAL = re.compile(r"-?[0-9]{1,20}")
