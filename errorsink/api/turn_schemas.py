"""Response shapes of the turn and latency operations (docs/turns.md)."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


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
    truncated: bool = Field(..., description="The session has more events than are read "
                            "(docs/api.md); later turns are left out.")  # fmt: skip
