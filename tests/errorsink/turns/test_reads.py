"""A session's turns put back together from their spans (errorsink/turns/reads.py), on the
timeline page and from the API: stages joined to their turn whichever arrived first, LiveKit's
user turn to the reply it starts, bad values named, nothing of another session."""

from __future__ import annotations

import pytest
from django.test import Client

from errorsink.ingest.queue import enqueue
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey
from errorsink.sessions.models import Event
from errorsink.turns.reads import turns_assemble
from tests.door_client import DoorClient
from tests.errorsink.conftest import drain
from tests.otel_agents import (
    SECOND,
    Agent,
    LiveKitTurn,
    PipecatTurn,
    export_request,
    livekit_session,
    pipecat_conversation,
)

pytestmark = pytest.mark.django_db(transaction=True)
START = 1_796_000_000 * SECOND


def _store(reader, project, spans) -> None:
    key = api_key_create(project=project, scopes=ApiKey.SCOPES)[1]
    answer = DoorClient().post("/v1/traces", export_request(spans),
                               content_type="application/x-protobuf",
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200
    drain(reader)


def _events(project, session_id: str) -> list[Event]:
    return list(Event.objects.filter(project=project, session_id=session_id)
                .order_by("occurred_at", "id"))  # fmt: skip


def test_stages_that_came_before_their_turn_are_joined_to_it(reader, project):
    agent = Agent(resource={"service.version": "b7"})
    pipecat_conversation(agent, "conv-join", [PipecatTurn(1, None), PipecatTurn(2, 1.6,
                                                                               llm_ttfb=0.9)],
                         start=START)  # fmt: skip
    spans = agent.finished()
    stages = [span for span in spans if span.name in ("stt", "llm", "tts")]
    _store(reader, project, stages)  # exported first, alone: no session
    _store(reader, project, [span for span in spans if span.name not in ("stt", "llm", "tts")])
    other = Agent()
    pipecat_conversation(other, "conv-other", [PipecatTurn(1, 0.7, llm_ttfb=5.0)], start=START)
    _store(reader, project, other.finished())

    turns = turns_assemble(_events(project, "conv-join"), project_id=project.id)
    assert [turn.number for turn in turns] == [1, 2]
    second = turns[1]
    assert second.voice_to_voice_ms == 1600.0 and second.slow
    assert second.stages == {"stt_ms": 200.0, "llm_ms": 900.0, "tts_ms": 150.0}
    assert second.models == {"stt": "deepgram/nova-3", "llm": "openai/gpt-4.1",
                             "tts": "cartesia/sonic-2"}  # fmt: skip
    assert (second.input_tokens, second.output_tokens) == (812, 37)
    assert not turns[0].slow and turns[0].voice_to_voice_ms is None


def test_a_livekit_user_turn_joins_the_reply_it_starts(reader, project):
    agent = Agent(resource={"service.version": "lk1"})
    livekit_session(agent, [LiveKitTurn(1.2, transcription_delay=0.25, end_of_turn_delay=0.5),
                            LiveKitTurn(0.8, transcription_delay=0.4, speech_id="speech_2")],
                    start=START, metadata={"session.id": "room-9"})  # fmt: skip
    _store(reader, project, agent.finished())
    turns = turns_assemble(_events(project, "room-9"), project_id=project.id)
    assert [turn.voice_to_voice_ms for turn in turns] == [1200.0, 800.0]
    assert turns[0].stages == {"end_of_turn_ms": 500.0, "stt_ms": 250.0, "llm_ms": 450.0,
                               "tts_ms": 200.0}  # fmt: skip
    assert turns[1].stages["stt_ms"] == 400.0


def test_the_timeline_page_shows_a_turn_as_one_row_with_its_waterfall(reader, project, alice):
    agent = Agent(resource={"service.version": "b9"})
    pipecat_conversation(agent, "conv-page", [PipecatTurn(1, None), PipecatTurn(2, 2.1),
                                              PipecatTurn(3, -0.5)], start=START)  # fmt: skip
    _store(reader, project, agent.finished())
    enqueue(
        [
            f'{{"type": "session_warning", "project_id": "{project.id}", "session_id": '
            f'"conv-page", "code": "HIGH_JITTER", "occurred_at": "2026-11-29T09:33:25Z"}}'
        ]
    )
    drain(reader)
    client = Client()
    client.force_login(alice)
    page = client.get(f"/projects/{project.id}/sessions/conv-page/").content.decode()
    assert page.count('class="timeline-event kind-turn') == 3  # stages fold into their turns
    assert page.count("kind-warning") >= 1
    assert "Voice-to-voice <strong>2,100 ms</strong>" in page
    assert page.count('class="wf-row') == 4 * 3 - 2  # no voice-to-voice on turns 1 and 3
    assert "left out of the latency figures: -500.0 is below 0" in page
    assert 'class="badge turn-slow"' in page
    assert "the greeting" in page


def test_the_api_gives_a_sessions_turns_to_a_reading_key_of_its_project(reader, project):
    agent = Agent(resource={"service.version": "b2"})
    pipecat_conversation(agent, "conv-api", [PipecatTurn(1, None), PipecatTurn(2, 1.05)],
                         start=START)  # fmt: skip
    _store(reader, project, agent.finished())
    key = api_key_create(project=project, scopes=["errors:read"])[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = client.get(f"/api/v1/projects/{project.id}/sessions/conv-api/turns").json()
    assert [turn["number"] for turn in body["turns"]] == [1, 2]
    second = body["turns"][1]
    assert (second["voice_to_voice_ms"], second["stt_ms"], second["llm_ms"], second["tts_ms"]) == (
        1050.0,
        200.0,
        500.0,
        150.0,
    )
    assert second["build_id"] == "b2" and second["slow"] is False and body["truncated"] is False
    missing = client.get(f"/api/v1/projects/{project.id}/sessions/nope/turns")
    assert missing.status_code == 404
