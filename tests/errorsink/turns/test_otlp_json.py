"""OTLP's JSON read straight into span records (errorsink/turns/otlp_json.py): the same records
as the protobuf of the same export, in protobuf's camelCase and its snake_case field names;
every value type; malformed shapes refused with a 400 naming what is wrong."""

from __future__ import annotations

import base64

import orjson
import pytest
from google.protobuf import json_format

from errorsink.turns.otlp import OtlpRefused, request_decode, spans_of
from errorsink.turns.otlp_json import json_spans
from tests.otel_agents import SECOND, Agent, PipecatTurn, export_request, pipecat_conversation

pytestmark = pytest.mark.pure


def _export() -> bytes:
    agent = Agent(resource={"service.version": "j1", "deployment.tags": ["a", "b"],
                            "host.cores": 8, "ratio": 0.5, "debug": True})  # fmt: skip
    pipecat_conversation(agent, "conv-json", [PipecatTurn(1, None), PipecatTurn(2, 0.8)],
                         start=1_796_000_000 * SECOND)  # fmt: skip
    return export_request(agent.finished())


def _as_otlp_json(protobuf: bytes, *, snake: bool) -> bytes:
    """The export as OTLP's JSON: protobuf's mapping with the ids in hex."""
    as_dict = json_format.MessageToDict(request_decode(protobuf),
                                        preserving_proto_field_name=snake)  # fmt: skip
    names = ("trace_id", "span_id", "parent_span_id") if snake else (
        "traceId", "spanId", "parentSpanId")  # fmt: skip
    for resource_spans in as_dict["resource_spans" if snake else "resourceSpans"]:
        for scope_spans in resource_spans["scope_spans" if snake else "scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in names:
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return orjson.dumps(as_dict)


@pytest.mark.parametrize("snake", [False, True])
def test_it_reads_the_same_records_as_the_protobuf(snake):
    protobuf = _export()
    assert json_spans(_as_otlp_json(protobuf, snake=snake)) == spans_of(request_decode(protobuf))


def test_every_value_type_and_64_bit_integers_as_strings_or_numbers():
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "s", "value": {"stringValue": "x"}}, {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "-42"}}, {"key": "j", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": "NaN"}}, {"key": "e", "value": {"doubleValue": 2}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "y"}]}}},
        {"key": "k", "value": {"kvlistValue": {"values": [
            {"key": "n", "value": {"intValue": "1"}}]}}},
        {"key": "y", "value": {"bytesValue": base64.b64encode(b"\x01\xff").decode()}},
        {"key": "empty", "value": {}}]},
        "scopeSpans": [{"spans": [{"traceId": "AB" * 16, "spanId": "cd" * 8, "name": "turn",
                                   "startTimeUnixNano": 5,
                                   "endTimeUnixNano": str(2**64 - 1)}]}]}]}  # fmt: skip
    (span,) = json_spans(orjson.dumps(body))
    resource = span.resource
    assert (resource["s"], resource["b"], resource["i"], resource["j"], resource["e"]) == (
        "x",
        True,
        -42,
        7,
        2.0,
    )
    assert resource["d"] != resource["d"]  # NaN
    assert (resource["a"], resource["k"], resource["y"], resource["empty"]) == (
        ["y"],
        {"n": 1},
        "01ff",
        None,
    )
    assert (span.trace_id, span.parent_span_id, span.start_ns, span.end_ns) == (
        "ab" * 16,
        "",
        5,
        2**64 - 1,
    )


@pytest.mark.parametrize(("body", "words"), [
    (b"[1]", "body must be an object"),
    (b'{"resourceSpans": {}}', "resourceSpans must be a list"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}', "span must be an object"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
     "traceId must be hex"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "1e9"}]}]}]}',
     "startTimeUnixNano must be a 64-bit integer"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "\\u00b2"}]}]}]}',
     "startTimeUnixNano must be a 64-bit integer"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": {}}]}]}]}',
     "attributes must be a list"),
    (b'{"resourceSpans": [{"resource": {"attributes": [{"key": "n", "value": '
     b'{"intValue": "99999999999999999999"}}]}}]}', "attribute 'n' must be a 64-bit integer"),
    (b'{"resourceSpans": [{"resource": {"attributes": [{"key": 3}]}}]}',
     "attribute key must be a string"),
])  # fmt: skip
def test_a_malformed_shape_is_a_400_naming_it(body, words):
    with pytest.raises(OtlpRefused) as refused:
        json_spans(body)
    assert refused.value.status == 400 and words in refused.value.message
