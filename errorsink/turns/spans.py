"""Which spans are turns, and the queue items they become (docs/turns.md): Pipecat's ``turn``
and its ``stt``/``llm``/``tts`` spans, LiveKit Agents' ``agent_turn``, ``llm_node``,
``tts_node`` and ``user_turn``. Any other span is ignored and counted by name; a turn-shaped
span that cannot become an item is rejected with its reason. Pure: no Django, no I/O.

Times: both frameworks give seconds; items carry milliseconds. A value that is no number, or is
negative or over an hour, stays in the item and the worker keeps it out of the figures, with
the reason on the timeline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from errorsink.turns.otlp import Span

# Where a span's session and build are read, first found wins (span, then resource).
SESSION_KEYS = ("session_id", "session.id", "conversation.id", "room_id", "job_id")
BUILD_KEYS = ("service.version", "build_id")
_PIPECAT_STAGES = ("stt", "llm", "tts")
_STAGE_METRIC = {"stt": "stt_ms", "llm": "llm_ms", "tts": "tts_ms"}


@dataclass
class Extracted:
    items: list[dict] = field(default_factory=list)  # queue items without their project
    ignored: Counter = field(default_factory=Counter)  # span name -> count
    rejected: list[str] = field(default_factory=list)  # a reason per span


def turns_extract(spans: list[Span]) -> Extracted:
    by_id = {(span.trace_id, span.span_id): span for span in spans}
    extracted = Extracted()
    for span in spans:
        shape = _shape(span)
        if shape is None:
            extracted.ignored[span.name[:60]] += 1
            continue
        part, framework, fields = shape
        if part != "turn" and not fields["metrics"]:
            # A stage that measured nothing (Pipecat's TTS span per sentence after the first,
            # a service with metrics off): nothing of a turn in it.
            extracted.ignored[f"{span.name[:40]} without a latency"] += 1
            continue
        problem = _problem(span)
        if problem:
            extracted.rejected.append(f"span {span.name!r} ({span.span_id}): {problem}")
            continue
        extracted.items.append(_item(span, part, framework, fields, by_id))
    return extracted


def _shape(span: Span) -> tuple[str, str, dict] | None:
    """The part, framework and own fields of a turn-shaped span; None for any other."""
    attributes, name = span.attributes, span.name
    if name == "turn" and ("turn.number" in attributes or "conversation.id" in attributes):
        return "turn", "pipecat", _pipecat_turn(attributes)
    stage = _pipecat_stage(name)
    if stage:
        return stage, "pipecat", _pipecat_service(stage, attributes)
    if name == "agent_turn":
        return "turn", "livekit", _livekit_turn(attributes)
    if name == "llm_node":
        return "llm", "livekit", _livekit_node(attributes, "lk.response.ttft", "llm_ms")
    if name == "tts_node":
        return "tts", "livekit", _livekit_node(attributes, "lk.response.ttfb", "tts_ms")
    if name == "user_turn":
        return "user_turn", "livekit", _livekit_user_turn(attributes)
    return None


def _pipecat_stage(name: str) -> str | None:
    if name in _PIPECAT_STAGES:
        return name
    # Pipecat's first tracing named spans after the service class: stt_deepgramsttservice.
    prefix, _, rest = name.partition("_")
    return prefix if prefix in _PIPECAT_STAGES and rest.endswith("service") else None


def _pipecat_turn(attributes: dict) -> dict:
    return {
        "metrics": _milliseconds({"voice_to_voice_ms":
                                  attributes.get("turn.user_bot_latency_seconds")}),
        "number": _integer(attributes.get("turn.number")),
        "interrupted": _flag(attributes.get("turn.was_interrupted")),
    }  # fmt: skip


def _pipecat_service(stage: str, attributes: dict) -> dict:
    return {
        "metrics": _milliseconds({_STAGE_METRIC[stage]: attributes.get("metrics.ttfb")}),
        **_model_fields(attributes),
    }


def _livekit_turn(attributes: dict) -> dict:
    return {
        "metrics": _milliseconds({"voice_to_voice_ms": attributes.get("lk.e2e_latency")}),
        "interrupted": _flag(attributes.get("lk.interrupted")),
        "speech_id": _text(attributes.get("lk.speech_id")),
    }


def _livekit_node(attributes: dict, key: str, metric: str) -> dict:
    return {"metrics": _milliseconds({metric: attributes.get(key)}), **_model_fields(attributes)}


def _livekit_user_turn(attributes: dict) -> dict:
    return {
        "metrics": _milliseconds({"stt_ms": attributes.get("lk.transcription_delay"),
                                  "end_of_turn_ms": attributes.get("lk.end_of_turn_delay")}),
        **_model_fields(attributes),
    }  # fmt: skip


def _model_fields(attributes: dict) -> dict:
    return {
        "provider": _text(attributes.get("gen_ai.provider.name")
                          or attributes.get("gen_ai.system")),
        "model": _text(attributes.get("gen_ai.request.model")),
        "input_tokens": _integer(attributes.get("gen_ai.usage.input_tokens")),
        "output_tokens": _integer(attributes.get("gen_ai.usage.output_tokens")),
    }  # fmt: skip


def _milliseconds(seconds: dict[str, Any]) -> dict[str, Any]:
    """Seconds as milliseconds; a value that is no number is passed on for the worker to name."""
    converted = {}
    for name, value in seconds.items():
        if value is None:
            continue
        number = type(value) in (int, float)
        # As a float: an integer past 64 bits once in ms would make the item unwritable.
        converted[name] = round(float(value) * 1000, 3) if number else value
    return converted


def _integer(value: Any) -> int | None:
    return value if type(value) is int else None


def _flag(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _text(value: Any) -> str | None:
    return value if type(value) is str and value else None


def _problem(span: Span) -> str | None:
    if not span.start_ns:
        return "no start time"
    if span.start_ns >= _LAST_MOMENT_NS:
        return "a start time past the year 9999"
    return None


_LAST_MOMENT_NS = 253_402_300_800 * 1_000_000_000  # 10000-01-01T00:00:00Z


def _item(span: Span, part: str, framework: str, fields: dict,
          by_id: dict[tuple[str, str], Span]) -> dict:  # fmt: skip
    item = {
        "type": "turn", "part": part, "framework": framework,
        "event_id": f"otel:{span.trace_id}:{span.span_id}",
        "trace_id": span.trace_id, "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "occurred_at": _iso(span.start_ns),
        "duration_ms": round((span.end_ns - span.start_ns) / 1e6, 3)
        if span.end_ns >= span.start_ns else None,
        **{name: value for name, value in fields.items() if value is not None and value != {}},
    }  # fmt: skip
    session = _session(span, by_id)
    if session is not None:
        item["session_id"] = session
    build = _first(span, BUILD_KEYS, resource_first=True)
    if build is not None:
        item["build_id"] = build
    return {name: value for name, value in item.items() if value is not None}


def _session(span: Span, by_id: dict[tuple[str, str], Span]) -> str | None:
    """The span's own session, else its nearest ancestor's among the request's spans (a
    Pipecat stage names no conversation; its turn does)."""
    seen = 0
    while span is not None and seen < 32:
        found = _first(span, SESSION_KEYS)
        if found is not None:
            return found
        span = by_id.get((span.trace_id, span.parent_span_id))
        seen += 1
    return None


def _first(span: Span, keys: tuple[str, ...], *, resource_first: bool = False) -> str | None:
    places = (
        (span.resource, span.attributes) if resource_first else (span.attributes, span.resource)
    )
    for key in keys:
        for place in places:
            value = place.get(key)
            if type(value) is str and value.strip():
                return value
            if type(value) is int:
                return str(value)
    return None


def _iso(nanoseconds: int) -> str:
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    return moment.isoformat()
