"""Response shapes of the turn and latency operations (docs/turns.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from errorsink.api.quality_schemas import QualityWindowOut
from errorsink.quality.selectors import BUILD_ID_MAX


class TurnOut(Schema):
    """One turn with its stages; times in milliseconds, null where not measured."""

    number: int | None
    started_at: datetime
    event_id: str
    trace_id: str | None
    span_id: str | None
    framework: str | None
    build_id: str
    interrupted: bool
    duration_ms: float | None
    voice_to_voice_ms: float | None = Field(..., description="From the caller's last word to "
                                            "the bot's first audio.")  # fmt: skip
    end_of_turn_ms: float | None
    stt_ms: float | None
    llm_ms: float | None = Field(..., description="The LLM's time to first token.")
    tts_ms: float | None = Field(..., description="Text to speech: time to first audio byte.")
    slow: bool = Field(..., description="Voice-to-voice of 1,500 ms or more.")
    models: dict[str, str] = Field(..., description="Per stage (stt, llm, tts): provider/model.")
    input_tokens: int | None
    output_tokens: int | None
    problems: dict[str, str] = Field(
        ..., description="Values left out of the figures (no number, negative, over an hour), "
        "with the reason.")  # fmt: skip


class TurnsOut(Schema):
    project_id: str
    session_id: str
    turns: list[TurnOut] = Field(..., description="In the order they started.")
    truncated: bool = Field(..., description="The session has more turn spans than are read "
                            "(4,000, about 1,000 turns); later turns are left out.")  # fmt: skip


class LatencyQuery(Schema):
    window: Literal["1h", "24h", "7d", "30d"] = "24h"
    build_id: str | None = Field(None, min_length=1, max_length=BUILD_ID_MAX,
                                 description="Only turns of sessions of this build.")  # fmt: skip


class FigureOut(Schema):
    count: int = Field(..., description="Valid values in the window.")
    avg: float | None
    p50: float | None = Field(..., description="Median, within 1 %; null without values.")
    p95: float | None = Field(..., description="95th percentile by nearest rank, within 1 %.")


class StagesOut(Schema):
    end_of_turn_ms: FigureOut
    stt_ms: FigureOut
    llm_ms: FigureOut = Field(..., description="The LLM's time to first token.")
    tts_ms: FigureOut = Field(..., description="Text to speech: time to first audio byte.")


class LatencyBuildOut(Schema):
    build_id: str
    first_seen: datetime | None = Field(..., description="The first bucket with a turn.")
    turns: int
    voice_to_voice: FigureOut
    stages: StagesOut
    slower_than: str | None = Field(
        ..., description="The build before it, when this one's voice-to-voice p95 is clearly "
        "above that build's (20 % and 200 ms, with 20 turns behind both).")  # fmt: skip


class SlowTurnOut(Schema):
    session_id: str
    number: int | None
    started_at: datetime
    build_id: str
    event_id: str
    voice_to_voice_ms: float


class LatencyOut(Schema):
    project_id: str
    window: QualityWindowOut
    build_id: str | None
    turns: int
    voice_to_voice: FigureOut = Field(..., description="From the caller's last word to the "
                                      "bot's first audio, in ms.")  # fmt: skip
    stages: StagesOut
    builds: list[LatencyBuildOut] = Field(..., description="Named builds newest first.")
    slowest: list[SlowTurnOut] = Field(..., description="The window's ten slowest turns.")
    accuracy: dict[str, float]
