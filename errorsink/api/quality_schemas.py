"""Query and response shapes of GET /api/v1/projects/{project_id}/quality
(docs/quality.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from errorsink.quality.selectors import BUILD_ID_MAX


class QualityQuery(Schema):
    window: Literal["1h", "24h", "7d", "30d", "custom"] = "24h"
    build_id: str | None = Field(None, min_length=1, max_length=BUILD_ID_MAX,
                                 description="Only events of sessions of this build.")  # fmt: skip
    since: datetime | None = Field(None, description="Start of a custom range (ISO 8601).")
    until: datetime | None = Field(None, description="End of a custom range, excluded.")


class QualityWindowOut(Schema):
    name: str = Field(..., examples=["24h"])
    start: datetime
    end: datetime = Field(..., description="Exclusive: the end of the current bucket.")
    bucket: str = Field(..., description="minute (1h) or hour (24h, 7d, 30d), in UTC.")


class QualitySessionsOut(Schema):
    active: int = Field(..., description="Sessions with at least one event in the window.")
    degraded: int = Field(
        ..., description="Sessions with a Telnyx 310xx, 320xx or 330xx warning in the window."
    )
    degraded_share: float = Field(..., ge=0, le=1)


class QualityPreviousOut(Schema):
    start: datetime
    end: datetime
    sessions: QualitySessionsOut


class MetricOut(Schema):
    count: int = Field(..., description="Valid values (out-of-range or non-numeric left out).")
    avg: float
    p95: float = Field(
        ..., description="Nearest rank: the ceil(0.95 n)-th smallest value, within 1 %."
    )


class SeriesPointOut(Schema):
    start: datetime
    count: int
    sessions: int


class QualityWarningOut(Schema):
    code: str = Field(..., examples=["31002"])
    name: str = Field(..., examples=["HIGH_JITTER"])
    count: int
    sessions: int
    session_share: float = Field(..., description="sessions / active sessions of the window.")
    metrics: dict[str, MetricOut] = Field(
        ..., description="By metric: rtt_ms, jitter_ms, packet_loss_pct, mos (those sent)."
    )
    series: list[SeriesPointOut] = Field(..., description="Buckets with warnings, oldest first.")


class QualityTerminationOut(Schema):
    cause: str = Field(..., examples=["USER_BUSY"])
    sip_code: int | None = Field(..., examples=[486])
    count: int
    sessions: int
    expected: bool = Field(
        ..., description="NORMAL_CLEARING, USER_BUSY, NO_ANSWER, CALL_REJECTED: not failures."
    )


class QualityErrorOut(Schema):
    code: str
    name: str
    count: int
    sessions: int


class QualityBuildOut(Schema):
    build_id: str = Field(..., description='"" for events that named no build.')
    first_seen: datetime = Field(
        ..., description="Start of the window's first bucket with events of this build."
    )
    sessions: int
    degraded: int
    degraded_share: float
    errors: int
    errors_per_session: float


class QualityAccuracyOut(Schema):
    sessions_exact: bool = Field(
        ..., description="Every session count exact (true below 4,096 distinct sessions)."
    )
    sessions_within: float = Field(
        ...,
        description="Otherwise each is within this relative distance (two standard "
        "errors of the theta sketch); 0 when exact.",
        examples=[0.0],
    )
    p95_within: float = Field(
        ...,
        description="Each p95 is within this relative distance of the exact nearest-rank "
        "value (DDSketch).",
        examples=[0.01],
    )


class QualityOut(Schema):
    project_id: str
    window: QualityWindowOut
    build_id: str | None
    sessions: QualitySessionsOut
    previous: QualityPreviousOut = Field(..., description="The window of the same length before.")
    warnings: list[QualityWarningOut]
    terminations: list[QualityTerminationOut]
    errors: list[QualityErrorOut]
    builds: list[QualityBuildOut]
    accuracy: QualityAccuracyOut = Field(..., description="Which figures are estimates, how close.")
