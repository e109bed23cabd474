"""A voice turn, or one stage of it, as the OTLP receiver makes it from an agent framework's
span (errorsink/turns/spans.py, docs/turns.md); a producer may push the same item itself.

One span is one item and one stored event of kind ``turn``, its code the part it stands for:
``turn`` (the whole turn: voice-to-voice), ``stt``, ``llm``, ``tts`` (a stage's time to first
byte) or ``user_turn`` (LiveKit's user side: transcription and end-of-turn delays). A turn and
its stages are put together when read, by trace and parent span: a stage's span often reaches
errorsink before its turn's (a span is exported when it ends, and a turn ends last).

Its event id is ``otel:<trace id>:<span id>``, so a retried export stores each span once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import PlainValidator, WithJsonSchema

from errorsink.catalog import CodeInfo
from errorsink.ingest.formats.base import Item
from errorsink.ingest.formats.shared import (
    ID_MAX,
    BadItem,
    Clipped,
    Flag,
    Integer,
    NormalisedEvent,
    Number,
    SessionId,
    Time,
    _choice,
    bad_field,
    wrong_type,
)
from errorsink.ingest.formats.voicethere import metrics_details
from errorsink.quality.metrics import TURN_METRIC_RANGES

PARTS = ("turn", "stt", "llm", "tts", "user_turn")
PART_NAMES = {"turn": "Turn", "stt": "Speech to text", "llm": "LLM", "tts": "Text to speech",
              "user_turn": "User turn"}  # fmt: skip
# The parts that stand for a turn of their own, so need their session: a stage finds its
# session through its turn.
SESSION_PARTS = ("turn", "user_turn")
_HEX = {16: re.compile(r"[0-9a-f]{16}"), 32: re.compile(r"[0-9a-f]{32}")}


def _hex_id(length: int):
    def check(value: Any) -> str:
        if type(value) is not str:
            raise wrong_type("a hex string")
        if not _HEX[length].fullmatch(value) or value.strip("0") == "":
            raise bad_field(f"must be {length} lowercase hex digits, not all zero")
        return value

    return Annotated[
        str,
        PlainValidator(check),
        WithJsonSchema({"type": "string", "pattern": f"^[0-9a-f]{{{length}}}$"}),
    ]


def _metrics(value: Any) -> Any:
    return value  # checked value by value in ``metrics_details``: a bad one never refuses


def _annotated(check, schema: dict) -> Any:
    return Annotated[Any, PlainValidator(check), WithJsonSchema(schema)]


TraceId = _hex_id(32)
SpanId = _hex_id(16)
Part = _choice(PARTS)
TurnMetrics = _annotated(_metrics, {
    "type": "object",
    "properties": {name: {"type": "number", "minimum": low, "maximum": high}
                   for name, (low, high) in TURN_METRIC_RANGES.items()},
    "description": "Milliseconds. A value of another type or out of range never refuses the "
                   "turn: it is kept out of the figures, the reason in details.metric_problems.",
})  # fmt: skip
Label = Annotated[str, Clipped(ID_MAX)]
_DURATION_MAX = 24 * 3_600_000  # a span open for more than a day is a broken clock


class Turn(Item):
    type: Literal["turn"]
    part: Part
    trace_id: TraceId
    span_id: SpanId
    parent_span_id: SpanId | None = None
    occurred_at: Time  # when the span started
    metrics: TurnMetrics | None = None
    number: Integer | None = None
    duration_ms: Number | None = None
    interrupted: Flag | None = None
    framework: Label | None = None
    provider: Label | None = None
    model: Label | None = None
    input_tokens: Integer | None = None
    output_tokens: Integer | None = None
    speech_id: Label | None = None
    session_id: SessionId | None = None

    def session(self) -> str | None:
        return self.session_id

    def when(self) -> datetime | None:
        return self.occurred_at

    def default_source(self, code: str, info: CodeInfo | None) -> str:
        return "agent"

    def normalised(self, raw: dict) -> NormalisedEvent:
        if self.part in SESSION_PARTS and self.session_id is None:
            raise BadItem(f"a {self.part} needs its session_id: set the span or resource "
                          "attribute session_id (docs/turns.md)")  # fmt: skip
        details = {} if self.metrics is None else metrics_details(self.metrics, TURN_METRIC_RANGES)
        details["turn"] = self._turn_fields()
        return self.build(
            raw,
            code=self.part,
            info=None,
            kind="turn",
            name=_name(self.part, self.number),
            message=_summary(details.get("metrics", {})),
            severity="low",
            details=details,
        )

    def _turn_fields(self) -> dict:
        duration = self.duration_ms
        valid_duration = duration is not None and 0 <= duration <= _DURATION_MAX
        return {
            "part": self.part, "trace_id": self.trace_id, "span_id": self.span_id,
            "parent_span_id": self.parent_span_id, "number": self.number,
            "duration_ms": duration if valid_duration else None,
            "interrupted": self.interrupted, "framework": self.framework,
            "provider": self.provider, "model": self.model,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "speech_id": self.speech_id,
        }  # fmt: skip


def _name(part: str, number: int | None) -> str:
    if part == "turn" and number is not None:
        return f"Turn {number}"
    return PART_NAMES[part]


_METRIC_WORDS = {"voice_to_voice_ms": "voice-to-voice", "stt_ms": "speech to text",
                 "llm_ms": "LLM first token", "tts_ms": "first audio byte",
                 "end_of_turn_ms": "end of turn"}  # fmt: skip


def _summary(metrics: dict) -> str:
    if not metrics:
        return "no latency measured"
    return ", ".join(f"{_METRIC_WORDS[name]} {round(value):,} ms"
                     for name, value in metrics.items())  # fmt: skip
