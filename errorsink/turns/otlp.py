"""OTLP trace exports in and answers out (docs/turns.md): the request in protobuf or in OTLP's
JSON, its spans as plain records, and the answer or error status in the request's own encoding.
Message classes come from ``opentelemetry-proto``; nothing here touches Django or Redis.

OTLP's JSON is protobuf's JSON mapping with two exceptions that matter here: trace and span ids
are hex, not base64, and enums are integers. Ids are turned into base64 before the JSON is read
by protobuf's own parser; unknown fields are ignored, as the specification asks.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_NOT_A_REQUEST = "body is not an OTLP ExportTraceServiceRequest"
# gRPC status codes for the HTTP statuses the receiver answers with (google.rpc.Code).
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 415: 3, 429: 8, 500: 13,
              503: 14}  # fmt: skip


class OtlpRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Span:
    """One span with what turn extraction reads: ids in lowercase hex ("" for no parent)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]  # the attributes of the resource that exported it


def request_decode(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    """The export request; OtlpRefused 415 for another media type, 400 for a malformed body."""
    request = ExportTraceServiceRequest()
    if media_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {exc}") from None
        return request
    if media_type == JSON:
        return _json_decode(body, request)
    raise OtlpRefused(415, f"Content-Type must be {PROTOBUF} or {JSON}, got {media_type!r}")


def _json_decode(body: bytes, request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpRefused(400, f"body is not JSON: {exc}") from None
    if type(obj) is not dict:
        raise OtlpRefused(400, "body must be a JSON object (an ExportTraceServiceRequest)")
    _hex_ids_to_base64(obj)
    try:
        json_format.ParseDict(obj, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {exc}") from None
    return request


def _hex_ids_to_base64(request: dict) -> None:
    for resource_spans in _list(request.get("resourceSpans")):
        for scope_spans in _list(_dict(resource_spans).get("scopeSpans")):
            for span in _list(_dict(scope_spans).get("spans")):
                span = _dict(span)
                _ids_converted(span)
                for link in _list(span.get("links")):
                    _ids_converted(_dict(link))


def _ids_converted(obj: dict) -> None:
    for name in _ID_FIELDS:
        value = obj.get(name)
        if type(value) is not str or not value:
            continue
        try:
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            raise OtlpRefused(400, f"{name} must be hex, got {value[:40]!r}") from None


def _list(value: Any) -> list:
    return value if type(value) is list else []


def _dict(value: Any) -> dict:
    return value if type(value) is dict else {}


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(Span(
                    span.name, _hex(span.trace_id), _hex(span.span_id),
                    _hex(span.parent_span_id), span.start_time_unix_nano,
                    span.end_time_unix_nano, attributes_of(span.attributes), resource,
                ))  # fmt: skip
    return spans


def _hex(value: bytes) -> str:
    return binascii.hexlify(value).decode()


def attributes_of(key_values) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _value(any_value) -> Any:
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return attributes_of(any_value.kvlist_value.values)
    if which == "bytes_value":
        return _hex(any_value.bytes_value)
    return getattr(any_value, which)


def response_encode(media_type: str, rejected: int, message: str) -> bytes:
    """The success answer: empty, or with ``partial_success`` when spans were not used."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return _encoded(response, media_type)


def status_encode(media_type: str, status: int, message: str) -> bytes:
    """An error answer's body: a google.rpc.Status, as OTLP/HTTP asks for 4xx and 5xx."""
    return _encoded(status_pb2.Status(code=GRPC_CODES.get(status, 2), message=message),
                    media_type)  # fmt: skip


def _encoded(message, media_type: str) -> bytes:
    if media_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()
