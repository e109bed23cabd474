"""The call-quality metrics a warning may carry and the range in which each value is valid: the one
definition that ingest (which keeps the reason a value is not valid) and the rollups (whose SQL
leaves such values out of averages and percentiles) both read. Pure: no Django."""

from __future__ import annotations

import math

# Latency and jitter up to ten minutes, loss in percent, MOS on its 1-5 scale.
METRIC_RANGES: dict[str, tuple[int, int]] = {
    "rtt_ms": (0, 600_000),
    "jitter_ms": (0, 600_000),
    "packet_loss_pct": (0, 100),
    "mos": (1, 5),
}
# A voice turn's waits (docs/turns.md), in milliseconds: past an hour a value is a broken clock
# or unit, not a slow turn.
TURN_METRIC_RANGES: dict[str, tuple[int, int]] = {
    "voice_to_voice_ms": (0, 3_600_000),
    "stt_ms": (0, 3_600_000),
    "llm_ms": (0, 3_600_000),
    "tts_ms": (0, 3_600_000),
    "end_of_turn_ms": (0, 3_600_000),
}
ALL_METRIC_RANGES = {**METRIC_RANGES, **TURN_METRIC_RANGES}


def metric_range_problem(name: str, value: int | float) -> str | None:
    """Why the number ``value`` is no valid ``name`` (``"7.2 is above 5"``); None when it is."""
    low, high = ALL_METRIC_RANGES[name]
    if type(value) is float and not math.isfinite(value):  # not from JSON, but from Python
        return f"{value} is not a finite number"
    if value < low:
        return f"{value} is below {low}"
    if value > high:
        return f"{value} is above {high}"
    return None
