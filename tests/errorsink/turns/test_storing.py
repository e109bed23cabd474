"""Turn items from the receiver through the queue reader into PostgreSQL: stored as events of
kind ``turn``, once per span whatever the retries, in their session without counting as its
events."""

from __future__ import annotations

import pytest

from errorsink.ingest.queue import enqueue, queue_name, redis_client
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey
from errorsink.sessions.models import Event, Session
from tests.door_client import DoorClient
from tests.errorsink.conftest import drain
from tests.otel_agents import SECOND, Agent, PipecatTurn, export_request, pipecat_conversation

pytestmark = pytest.mark.django_db(transaction=True)
START = 1_796_000_000 * SECOND


def _export(key: str, spans) -> None:
    answer = DoorClient().post("/v1/traces", export_request(spans),
                               content_type="application/x-protobuf",
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200


def test_turns_are_stored_once_in_their_session_without_counting_as_its_events(reader, project):
    key = api_key_create(project=project, scopes=ApiKey.SCOPES)[1]
    redis_client().delete(queue_name())
    enqueue([f'{{"type": "session_warning", "project_id": "{project.id}", "session_id": '
             f'"conv-7", "code": "HIGH_JITTER"}}'])  # fmt: skip
    agent = Agent(resource={"service.version": "agent@3"})
    pipecat_conversation(agent, "conv-7", [PipecatTurn(1, None), PipecatTurn(2, 0.9)],
                         start=START)  # fmt: skip
    spans = agent.finished()
    _export(key, spans)
    _export(key, spans)  # the exporter retried
    drain(reader)

    turns = Event.objects.filter(kind=Event.TURN)
    assert turns.count() == 8
    assert sorted(turns.values_list("code", flat=True)) == ["llm", "llm", "stt", "stt", "tts",
                                                           "tts", "turn", "turn"]  # fmt: skip
    second = turns.get(code="turn", name="Turn 2")
    assert second.session_id == "conv-7" and second.build_id == "agent@3"
    assert second.details["metrics"] == {"voice_to_voice_ms": 900.0}
    assert second.message == "voice-to-voice 900 ms" and second.source == "agent"
    session = Session.objects.get(session_id="conv-7")
    assert (session.event_count, session.warning_count, session.error_count) == (1, 1, 0)
    assert session.build_id == "agent@3"
    first_turn = turns.order_by("occurred_at").first()
    assert session.first_seen <= first_turn.occurred_at
