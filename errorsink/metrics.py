"""The call-quality metrics a warning may carry and the range in which each value is valid: the one
definition that ingest (which keeps the reason a value is not valid) and the rollups (whose SQL
leaves such values out of averages and percentiles) both read. Pure: no Django."""

from __future__ import annotations

# Latency and jitter up to ten minutes, loss in percent, MOS on its 1-5 scale.
METRIC_RANGES: dict[str, tuple[int, int]] = {
    "rtt_ms": (0, 600_000),
    "jitter_ms": (0, 600_000),
    "packet_loss_pct": (0, 100),
    "mos": (1, 5),
}

