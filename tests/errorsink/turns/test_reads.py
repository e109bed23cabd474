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


def test_a_session_of_stages_alone_has_a_page_and_turns_never_push_errors_out(
    reader, project, alice, monkeypatch
):  # fmt: skip
    agent = Agent(resource={"service.version": "b1"})
    pipecat_conversation(agent, "conv-lim", [PipecatTurn(n, 1.0) for n in range(1, 4)],
                         start=START)  # fmt: skip
    spans = agent.finished()
    stages = [span for span in spans if span.name in ("stt", "llm", "tts")]
    for span in stages:  # as if each stage named its session (a resource attribute)
        span.resource._attributes = {**span.resource.attributes, "session_id": "conv-lim"}
    _store(reader, project, stages)
    client = Client()
    client.force_login(alice)
    page = client.get(f"/projects/{project.id}/sessions/conv-lim/")
    assert page.status_code == 200 and "Only stages of a voice turn so far" in page.text

    _store(reader, project, [span for span in spans if span.name == "turn"])
    enqueue([f'{{"type": "session_error", "project_id": "{project.id}", "session_id": '
             f'"conv-lim", "code": "AGENT_HANDLER_FAILED", "message": "boom {n}", '
             f'"occurred_at": "2026-11-29T09:35:0{n}Z"}}' for n in range(3)])  # fmt: skip
    drain(reader)
    monkeypatch.setattr("errorsink.sessions.selectors.SESSION_EVENTS_MAX", 3)
    page = client.get(f"/projects/{project.id}/sessions/conv-lim/").text
    assert page.count('class="timeline-event kind-turn') == 3 and page.count("kind-error") >= 3
    assert "only the first" not in page  # twelve spans, three errors: nothing cut
    key = api_key_create(project=project, scopes=["errors:read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    timeline = api.get(f"/api/v1/projects/{project.id}/sessions/conv-lim/timeline").json()
    assert [event["kind"] for event in timeline["events"]] == ["error"] * 3  # turns: /turns
    turns = api.get(f"/api/v1/projects/{project.id}/sessions/conv-lim/turns").json()["turns"]
    assert [turn["number"] for turn in turns] == [1, 2, 3]


def test_a_turn_with_two_llm_calls_keeps_the_first_wait_and_adds_the_tokens(reader, project):
    agent = Agent(resource={"service.version": "b1"})
    pipecat_conversation(agent, "conv-tool", [PipecatTurn(2, 1.9, llm_ttfb=0.7)], start=START)
    spans = agent.finished()
    turn = next(span for span in spans if span.name == "turn")
    tracer = agent.tracer("pipecat")
    from opentelemetry import trace

    later = tracer.start_span("llm", context=trace.set_span_in_context(
        trace.NonRecordingSpan(turn.get_span_context())), start_time=START + 3 * SECOND,
        attributes={"metrics.ttfb": 0.3, "gen_ai.usage.input_tokens": 900,
                    "gen_ai.usage.output_tokens": 12})  # fmt: skip
    later.end(end_time=START + 4 * SECOND)
    _store(reader, project, agent.finished())
    (only,) = turns_assemble(_events(project, "conv-tool"), project_id=project.id)
    assert only.stages["llm_ms"] == 700.0  # the call the caller waited for, after a tool call
    assert (only.input_tokens, only.output_tokens) == (812 + 900, 37 + 12)
