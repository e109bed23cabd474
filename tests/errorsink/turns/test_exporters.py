"""The real OpenTelemetry exporters against the running receivers: OTLP/HTTP through Daphne
(the front door) and OTLP/gRPC (errorsink/turns/grpc_server.py, started as `make run` starts
it), spans in Pipecat's shape; the queued turn items, and refusals the exporters read as
failures."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from devstack.processes import free_port, start, stop
from errorsink.ingest.queue import queue_name, redis_client
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey
from tests.otel_agents import SECOND, Agent, PipecatTurn, pipecat_conversation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def grpc_port(service_env, tmp_path):
    port = free_port()
    command = ["python", "manage.py", "otlp_grpc", "--bind", "127.0.0.1", "--port", str(port)]
    server = start(command, service_env, tmp_path / "otlp.log", ready=port)
    yield port
    stop(server)


def _exporter(port: int, key: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=10,
                            headers=(("authorization", f"Bearer {key}"),))  # fmt: skip


def _spans() -> list:
    agent = Agent(resource={"service.name": "pipecat", "service.version": "grpc@1"})
    pipecat_conversation(agent, "conv-grpc", [PipecatTurn(1, None), PipecatTurn(2, 0.95)],
                         start=1_796_000_000 * SECOND)  # fmt: skip
    return agent.finished()


def test_the_grpc_exporter_queues_turns_and_a_bad_key_fails(project, grpc_port, clean_queue):
    key = api_key_create(project=project, scopes=ApiKey.SCOPES)[1]
    assert _exporter(grpc_port, key).export(_spans()) == SpanExportResult.SUCCESS
    items = [orjson.loads(raw) for raw in redis_client().lrange(queue_name(), 0, -1)]
    assert sorted(item["part"] for item in items) == ["llm", "llm", "stt", "stt", "tts", "tts",
                                                      "turn", "turn"]  # fmt: skip
    assert {item["session_id"] for item in items} == {"conv-grpc"}
    assert {item["project_id"] for item in items} == {str(project.id)}
    redis_client().delete(queue_name())
    assert _exporter(grpc_port, "es_nope").export(_spans()) == SpanExportResult.FAILURE
    assert redis_client().llen(queue_name()) == 0


def test_the_http_exporter_queues_turns_through_daphne(project, live_server_url, clean_queue):
    key = api_key_create(project=project, scopes=ApiKey.SCOPES)[1]
    exporter = HttpSpanExporter(endpoint=f"{live_server_url}/v1/traces", timeout=10,
                                headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert exporter.export(_spans()) == SpanExportResult.SUCCESS
    items = [orjson.loads(raw) for raw in redis_client().lrange(queue_name(), 0, -1)]
    assert len(items) == 8 and {item["build_id"] for item in items} == {"grpc@1"}
    redis_client().delete(queue_name())
    refused = HttpSpanExporter(endpoint=f"{live_server_url}/v1/traces", timeout=10,
                               headers={"Authorization": "Bearer es_nope"})  # fmt: skip
    assert refused.export(_spans()) == SpanExportResult.FAILURE
    assert redis_client().llen(queue_name()) == 0
