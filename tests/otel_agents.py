"""Spans as Pipecat 1.x and LiveKit Agents 1.x emit them, made with the real OpenTelemetry SDK.

The names, parents and attribute keys are those of the frameworks' sources (Pipecat
``src/pipecat/utils/tracing/turn_trace_observer.py`` and ``service_decorators.py``; LiveKit
``livekit/agents/telemetry/trace_types.py``, ``voice/agent_activity.py``, ``generation.py``,
``audio_recognition.py``): docs/turns.md restates them. Times are given explicitly so a test
knows every figure; values are seconds, as both frameworks send them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SECOND = 1_000_000_000


@dataclass
class PipecatTurn:
    number: int
    user_bot_latency: float | None  # seconds; None: the greeting, no user speech before it
    stt_ttfb: float = 0.2
    llm_ttfb: float = 0.5
    tts_ttfb: float = 0.15
    interrupted: bool = False
    duration: float = 4.0


@dataclass
class LiveKitTurn:
    e2e_latency: float | None
    transcription_delay: float = 0.3
    end_of_turn_delay: float = 0.6
    ttft: float = 0.45
    ttfb: float = 0.2
    interrupted: bool = False
    speech_id: str = "speech_1"


@dataclass
class Agent:
    """A tracer provider like the frameworks' set-up makes, exporting to ``exporter``."""

    exporter: SpanExporter = field(default_factory=InMemorySpanExporter)
    resource: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.provider = TracerProvider(resource=Resource.create(self.resource))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def tracer(self, name: str) -> trace.Tracer:
        return self.provider.get_tracer(name)

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def shutdown(self) -> None:
        self.provider.shutdown()


def pipecat_conversation(agent: Agent, conversation_id: str, turns: list[PipecatTurn], *,
                         start: int, end_conversation: bool = True) -> int:  # fmt: skip
    """A conversation span (ended only if ``end_conversation``) with its turns, each with its
    stt, llm and tts spans as children: as Pipecat's TurnTraceObserver and service decorators
    make them. Returns the time the last turn ended."""
    turn_tracer, service_tracer = agent.tracer("pipecat.turn"), agent.tracer("pipecat")
    conversation = turn_tracer.start_span(
        "conversation", start_time=start,
        attributes={"conversation.id": conversation_id, "conversation.type": "voice"})  # fmt: skip
    at = start
    for turn in turns:
        at = _pipecat_turn(turn_tracer, service_tracer, conversation, conversation_id, turn, at)
    if end_conversation:
        conversation.end(end_time=at)
    return at


def _pipecat_turn(turn_tracer, service_tracer, conversation, conversation_id: str,
                  turn: PipecatTurn, at: int) -> int:  # fmt: skip
    context = trace.set_span_in_context(conversation)
    span = turn_tracer.start_span("turn", context=context, start_time=at, attributes={
        "turn.number": turn.number, "turn.type": "conversation",
        "conversation.id": conversation_id})  # fmt: skip
    inside = trace.set_span_in_context(span)
    stages = (("stt", turn.stt_ttfb, {"gen_ai.provider.name": "deepgram",
                                      "gen_ai.request.model": "nova-3", "is_final": True,
                                      "transcript": "what time do you close"}),
              ("llm", turn.llm_ttfb, {"gen_ai.provider.name": "openai",
                                      "gen_ai.request.model": "gpt-4.1",
                                      "gen_ai.operation.name": "chat",
                                      "gen_ai.usage.input_tokens": 812,
                                      "gen_ai.usage.output_tokens": 37}),
              ("tts", turn.tts_ttfb, {"gen_ai.provider.name": "cartesia",
                                      "gen_ai.request.model": "sonic-2",
                                      "gen_ai.output.type": "speech"}))  # fmt: skip
    step = at
    for name, ttfb, attributes in stages:
        stage = service_tracer.start_span(
            name, context=inside, start_time=step, attributes={**attributes, "metrics.ttfb": ttfb}
        )
        step += int(ttfb * SECOND) + SECOND // 10
        stage.end(end_time=step)
    if turn.user_bot_latency is not None:
        span.set_attribute("turn.user_bot_latency_seconds", turn.user_bot_latency)
    ended = at + int(turn.duration * SECOND)
    span.set_attribute("turn.duration_seconds", turn.duration)
    span.set_attribute("turn.was_interrupted", turn.interrupted)
    span.end(end_time=ended)
    return ended


def livekit_session(agent: Agent, turns: list[LiveKitTurn], *, start: int,
                    metadata: dict | None = None) -> int:  # fmt: skip
    """An agent_session with, per turn, a user_turn and an agent_turn (its llm_node and
    tts_node inside), as LiveKit Agents traces a pipeline agent. ``metadata`` is what
    ``set_tracer_provider(provider, metadata=...)`` sets on every span."""
    tracer, extra = agent.tracer("livekit-agents"), metadata or {}
    session = tracer.start_span("agent_session", start_time=start, attributes={
        "lk.agent_label": "assistant", "lk.job_id": "AJ_8ZkQ", "lk.pii.room_name": "call-room",
        **extra})  # fmt: skip
    context, at = trace.set_span_in_context(session), start
    for turn in turns:
        at = _livekit_turn(tracer, context, extra, turn, at)
    session.end(end_time=at)
    return at


def _livekit_turn(tracer, context, extra: dict, turn: LiveKitTurn, at: int) -> int:
    user = tracer.start_span(
        "user_turn",
        context=context,
        start_time=at,
        attributes={"gen_ai.provider.name": "deepgram", "gen_ai.request.model": "nova-3", **extra},
    )
    user.set_attributes({"lk.pii.user_transcript": "book a table",
                         "lk.transcript_confidence": 0.93,
                         "lk.transcription_delay": turn.transcription_delay,
                         "lk.end_of_turn_delay": turn.end_of_turn_delay})  # fmt: skip
    at += 2 * SECOND
    user.end(end_time=at)
    reply = tracer.start_span("agent_turn", context=context, start_time=at, attributes={
        "lk.generation_id": "gen_1", "lk.speech_id": turn.speech_id,
        "lk.pii.user_input": "book a table", **extra})  # fmt: skip
    inside = trace.set_span_in_context(reply)
    llm = tracer.start_span(
        "llm_node",
        context=inside,
        start_time=at,
        attributes={
            "gen_ai.request.model": "gpt-4.1-mini",
            "gen_ai.provider.name": "openai",
            **extra,
        },
    )
    llm.set_attribute("lk.response.ttft", turn.ttft)
    llm.end(end_time=at + SECOND)
    tts = tracer.start_span(
        "tts_node",
        context=inside,
        start_time=at + SECOND // 2,
        attributes={"gen_ai.request.model": "sonic-2", "gen_ai.provider.name": "cartesia", **extra},
    )
    tts.set_attribute("lk.response.ttfb", turn.ttfb)
    tts.end(end_time=at + 2 * SECOND)
    reply.set_attribute("lk.interrupted", turn.interrupted)
    if turn.e2e_latency is not None:
        reply.set_attribute("lk.e2e_latency", turn.e2e_latency)
    at += 3 * SECOND
    reply.end(end_time=at)
    return at


def export_request(spans: list[ReadableSpan]) -> bytes:
    """The protobuf body the OTLP exporters send for these spans (their own encoder)."""
    return encode_spans(spans).SerializeToString()
