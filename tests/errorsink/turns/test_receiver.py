"""The OTLP/HTTP receiver at the door (errorsink/door/otlp.py, docs/turns.md): spans made by the
real OpenTelemetry SDK in Pipecat's and LiveKit's shapes, encoded by the OTLP exporters' own
encoder, posted as protobuf, OTLP JSON and gzip; the queued turn items, the answers and the
refusals in OTLP's encodings."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from errorsink.ingest.formats import normalise_item
from errorsink.ingest.queue import queue_name, redis_client
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey
from errorsink.sentry.keys import sentry_key_for
from tests.door_client import DoorClient
from tests.otel_agents import (
    SECOND,
    Agent,
    LiveKitTurn,
    PipecatTurn,
    export_request,
    livekit_session,
    pipecat_conversation,
)

pytestmark = pytest.mark.django_db
START = 1_796_000_000 * SECOND  # 2026-11-29
PROTOBUF = "application/x-protobuf"


@pytest.fixture(autouse=True)
def empty_queue():
    redis_client().delete(queue_name())
    yield
    redis_client().delete(queue_name())


@pytest.fixture
def key(project) -> str:
    return api_key_create(project=project, scopes=ApiKey.SCOPES)[1]


def _post(body: bytes, key: str, *, content_type: str = PROTOBUF, path: str = "/v1/traces",
          headers: dict | None = None):  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    return DoorClient().post(path, body, content_type=content_type, headers=headers)


def _queued() -> list[dict]:
    return [orjson.loads(raw) for raw in reversed(redis_client().lrange(queue_name(), 0, -1))]


def _response(answer) -> ExportTraceServiceResponse:
    message = ExportTraceServiceResponse()
    message.ParseFromString(answer.content)
    return message


def _pipecat_spans(conversation_id: str = "conv-1", **kwargs) -> list:
    agent = Agent(resource={"service.name": "pipecat", "service.version": "agent@2.1.0"})
    pipecat_conversation(agent, conversation_id, [PipecatTurn(1, None),
                                                 PipecatTurn(2, 1.25, stt_ttfb=0.21)],
                         start=START, **kwargs)  # fmt: skip
    return agent.finished()


def test_a_pipecat_conversation_becomes_turns_and_stages_with_the_conversation_session(key):
    answer = _post(export_request(_pipecat_spans()), key)
    assert answer.status_code == 200
    assert answer["Content-Type"] == PROTOBUF
    partial = _response(answer).partial_success
    assert partial.rejected_spans == 1 and "conversation x1" in partial.error_message
    items = _queued()
    assert sorted(i["part"] for i in items) == ["llm", "llm", "stt", "stt", "tts", "tts",
                                                "turn", "turn"]  # fmt: skip
    assert {i["session_id"] for i in items} == {"conv-1"}  # stages through their turn
    assert {i["build_id"] for i in items} == {"agent@2.1.0"}
    second = next(i for i in items if i["part"] == "turn" and i["number"] == 2)
    assert second["metrics"] == {"voice_to_voice_ms": 1250.0}
    assert second["interrupted"] is False and second["framework"] == "pipecat"
    stt = next(i for i in items if i["part"] == "stt" and i["parent_span_id"] == second["span_id"])
    assert stt["metrics"] == {"stt_ms": 210.0}
    llm = next(i for i in items if i["part"] == "llm" and i["parent_span_id"] == second["span_id"])
    assert (llm["provider"], llm["model"], llm["input_tokens"], llm["output_tokens"]) == (
        "openai",
        "gpt-4.1",
        812,
        37,
    )
    assert second["event_id"] == f"otel:{second['trace_id']}:{second['span_id']}"
    greeting = next(i for i in items if i["part"] == "turn" and i["number"] == 1)
    assert "metrics" not in greeting  # no user speech before the greeting: no voice-to-voice


def test_every_queued_turn_item_is_one_the_worker_stores(key):
    _post(export_request(_pipecat_spans()), key)
    for item in _queued():
        event = normalise_item(orjson.dumps(item))
        assert event.kind == "turn" and event.code == item["part"]


def test_a_stage_exported_before_its_turn_is_queued_without_a_session(key):
    """Spans are exported as they end, and a stage ends before its turn: a request may hold
    the stage alone. It is kept, and put together with its turn when read."""
    stages = [span for span in _pipecat_spans() if span.name in ("stt", "llm", "tts")]
    assert _post(export_request(stages), key).status_code == 200
    items = _queued()
    assert len(items) == 6 and all("session_id" not in item for item in items)


def test_livekit_turns_take_their_session_from_the_metadata_on_every_span(key):
    agent = Agent(resource={"service.name": "livekit-agents", "service.version": "9f3c2e1"})
    livekit_session(agent, [LiveKitTurn(1.1), LiveKitTurn(0.9, speech_id="speech_2")],
                    start=START, metadata={"session.id": "room-42"})  # fmt: skip
    answer = _post(export_request(agent.finished()), key)
    assert answer.status_code == 200
    items = _queued()
    assert sorted(i["part"] for i in items) == ["llm", "llm", "tts", "tts", "turn", "turn",
                                                "user_turn", "user_turn"]  # fmt: skip
    assert {i["session_id"] for i in items} == {"room-42"}
    turn = next(i for i in items if i["part"] == "turn" and i["speech_id"] == "speech_2")
    assert turn["metrics"] == {"voice_to_voice_ms": 900.0} and turn["framework"] == "livekit"
    user = next(i for i in items if i["part"] == "user_turn")
    assert user["metrics"] == {"stt_ms": 300.0, "end_of_turn_ms": 600.0}
    assert "agent_session x1" in _response(answer).partial_success.error_message


def test_a_turn_with_no_session_anywhere_is_rejected_with_the_reason(key):
    agent = Agent(resource={"service.name": "livekit-agents"})
    livekit_session(agent, [LiveKitTurn(1.0)], start=START)  # no metadata: no session id
    answer = _post(export_request(agent.finished()), key)
    assert answer.status_code == 200
    partial = _response(answer).partial_success
    assert "needs its session_id" in partial.error_message
    assert sorted(i["part"] for i in _queued()) == ["llm", "tts"]  # stages wait for their turn


def test_otlp_json_with_hex_ids_queues_what_protobuf_does(key):
    body = export_request(_pipecat_spans())
    _post(body, key)
    from_protobuf = _queued()
    redis_client().delete(queue_name())
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    as_json = json_format.MessageToDict(request)
    for resource_spans in as_json["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
                span["unknownFieldFromTheFuture"] = {"x": 1}
    answer = _post(orjson.dumps(as_json), key, content_type="application/json")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert _queued() == from_protobuf


def test_a_gzip_body_is_read_and_a_retried_export_queues_the_same_event_ids(key):
    body = gzip.compress(export_request(_pipecat_spans()))
    for _ in range(2):
        assert _post(body, key, headers={"Content-Encoding": "gzip"}).status_code == 200
    ids = [item["event_id"] for item in _queued()]
    assert len(ids) == 16 and len(set(ids)) == 8  # the worker stores each id once


@pytest.mark.parametrize(("body", "content_type", "words"), [
    (b"\x0a\xff\xff\xff", PROTOBUF, "not an OTLP ExportTraceServiceRequest"),
    (b"{not json", "application/json", "not JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
     "application/json", "traceId must be hex"),
])  # fmt: skip
def test_a_malformed_body_is_a_400_with_an_otlp_status_in_its_encoding(key, body, content_type,
                                                                      words):  # fmt: skip
    answer = _post(body, key, content_type=content_type)
    assert answer.status_code == 400
    if content_type == PROTOBUF:
        status = status_pb2.Status()
        status.ParseFromString(answer.content)
        message = status.message
    else:
        message = answer.json()["message"]
    assert words in message
    assert _queued() == []


def test_another_media_type_is_a_415(key):
    answer = _post(b"x", key, content_type="text/plain")
    assert answer.status_code == 415 and "application/x-protobuf" in answer.json()["message"]


def test_keys_and_projects(project, key):
    read_only = api_key_create(project=project, scopes=["errors:read"])[1]
    body = export_request(_pipecat_spans())
    assert _post(body, "").status_code == 401
    assert _post(body, "es_live_nope").status_code == 401
    other = f"/api/v1/projects/{'0' * 8}-0000-4000-8000-{'0' * 12}/otlp/v1/traces"
    assert _post(body, key, path=other).status_code == 404
    assert _post(body, read_only).status_code == 403
    assert _queued() == []
    mine = f"/api/v1/projects/{project.id}/otlp/v1/traces"
    assert _post(body, key, path=mine).status_code == 200
    assert _post(body, sentry_key_for(project).public_key).status_code == 200  # a DSN's key
    assert len(_queued()) == 16


def test_an_absurd_value_is_queued_and_named_by_the_worker_not_refused(key):
    agent = Agent(resource={"service.version": "b1"})
    pipecat_conversation(agent, "conv-abs", [PipecatTurn(2, -0.4, llm_ttfb=7200.0)], start=START)
    _post(export_request(agent.finished()), key)
    by_part = {item["part"]: item for item in _queued()}
    turn = normalise_item(orjson.dumps(by_part["turn"]))
    assert turn.details["metrics"] == {}
    assert turn.details["metric_problems"] == {"voice_to_voice_ms": "-400.0 is below 0"}
    llm = normalise_item(orjson.dumps(by_part["llm"]))
    assert llm.details["metric_problems"] == {"llm_ms": "7200000.0 is above 3600000"}


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_an_export_past_the_span_limit_is_a_413_before_anything_is_read(key, monkeypatch,
                                                                        encoding):  # fmt: skip
    monkeypatch.setattr("errorsink.turns.otlp.MAX_SPANS", 7)
    monkeypatch.setattr("errorsink.turns.otlp_json.MAX_SPANS", 7)
    body = export_request(_pipecat_spans())  # 9 spans
    if encoding == "json":
        answer = _post(_as_json(body), key, content_type="application/json")
        assert "More than 7 spans" in answer.json()["message"]
    else:
        answer = _post(body, key)
    assert answer.status_code == 413 and _queued() == []


def _as_json(protobuf: bytes) -> bytes:
    from tests.errorsink.turns.test_otlp_json import _as_otlp_json

    return _as_otlp_json(protobuf, snake=False)


def test_a_stage_that_measured_nothing_is_ignored_by_name_not_rejected(key):
    agent = Agent(resource={"service.version": "b1"})
    tracer = agent.tracer("pipecat")
    tracer.start_span("tts", start_time=START, attributes={"text": "And one more thing."}).end(
        end_time=START + SECOND
    )
    answer = _post(export_request(agent.finished()), key)
    partial = _response(answer).partial_success
    assert partial.rejected_spans == 1 and "tts without a latency x1" in partial.error_message
    assert "rejected" not in partial.error_message and _queued() == []
