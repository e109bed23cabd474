"""OTLP trace exports in and answers out (docs/turns.md): the request in protobuf, its spans as
plain records, and the answer or error status in the request's own encoding (protobuf or
OTLP's JSON). Message classes come from ``opentelemetry-proto``; nothing here touches Django or
Redis. OTLP's JSON requests are read by errorsink/turns/otlp_json.py into the same records.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

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
_NOT_A_REQUEST = "body is not an OTLP ExportTraceServiceRequest"
# gRPC status codes for the HTTP statuses the receiver answers with (google.rpc.Code).
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 500: 13,
              503: 14}  # fmt: skip


# Spans one export may hold: the exporters send at most 512 at a time unless told otherwise
# (OTEL_BSP_MAX_EXPORT_BATCH_SIZE); the receiver reads a request in Daphne's event loop.
MAX_SPANS = 10_000


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


def request_decode(body: bytes) -> ExportTraceServiceRequest:
    """An export request in protobuf; OtlpRefused 400 for a malformed body. (OTLP's JSON is
    read by errorsink/turns/otlp_json.py.)"""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpRefused(400, f"{_NOT_A_REQUEST}: {exc}") from None
    return request


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    """The request's spans; OtlpRefused 413 past MAX_SPANS (checked before any is read)."""
    count = sum(len(scope.spans) for resource in request.resource_spans
                for scope in resource.scope_spans)  # fmt: skip
    if count > MAX_SPANS:
        raise too_many_spans(count)
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


def too_many_spans(count: int | None = None) -> OtlpRefused:
    """413 for an export past MAX_SPANS (``count`` when known)."""
    spans = f"{count:,} spans" if count is not None else f"More than {MAX_SPANS:,} spans"
    return OtlpRefused(413, f"{spans} in one export, over the limit of {MAX_SPANS:,}: send "
                            "smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")  # fmt: skip


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
