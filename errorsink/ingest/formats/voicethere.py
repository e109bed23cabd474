"""The runner's own items (VoiceThere, docs/formats.md): session errors, the legacy agent error,
quality warnings and how a session ended.

Their source defaults from the code (AGENT_* agent; RUNNER_INTERNAL, SESSION_*, IDLE_* runner;
PROVISIONING_* provisioning; WEBRTC_* client), otherwise runner, since runner pods are the
queue's producers.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import WithJsonSchema

from errorsink.catalog import CodeInfo, lookup
from errorsink.ingest.formats.base import Item, termination_details
from errorsink.ingest.formats.shared import (
    Code,
    Flag,
    Integer,
    Message,
    NormalisedEvent,
    Number,
    SessionId,
    Stack,
    Text,
    Time,
    json_type,
    show,
)
from errorsink.ingest.formats.telnyx import TelnyxCode
from errorsink.quality.metrics import METRIC_RANGES, metric_range_problem

_SOURCE_BY_PREFIX = (
    ("AGENT_", "agent"),
    ("RUNNER_INTERNAL", "runner"),
    ("SESSION_", "runner"),
    ("IDLE_", "runner"),
    ("PROVISIONING_", "provisioning"),
    ("WEBRTC_", "client"),
)
_AGENT_CHILD_CRASHED = lookup("AGENT_CHILD_CRASHED", sdk="voicethere", fallback=False)


@lru_cache(maxsize=1024)  # a few dozen codes make all the traffic
def source_for_code(code: str) -> str:
    for prefix, source in _SOURCE_BY_PREFIX:
        if code.startswith(prefix):
            return source
    return "runner"


class RunnerItem(Item):
    # Each item declares session_id and occurred_at after its own fields: a reason names the
    # first bad field in the order the runner's formats were always read.
    def session(self) -> str | None:
        return self.session_id

    def when(self) -> datetime | None:
        return self.occurred_at

    def default_source(self, code: str, info: CodeInfo | None) -> str:
        return source_for_code(code)


class SessionError(RunnerItem):
    """An error of one session; its kind, severity and recoverable come from the catalog
    unless the item says."""

    type: Literal["session_error"]
    code: Code
    recoverable: Flag | None = None
    message: Message
    session_id: SessionId
    occurred_at: Time | None = None
    stack: Stack | None = None

    def normalised(self, raw: dict) -> NormalisedEvent:
        info = lookup(self.code, sdk="voicethere")
        return self.build(
            raw,
            code=self.code,
            info=info,
            kind=info.kind if info else "error",
            message=self.message,
            recoverable=self.recoverable,
            stack=self.stack,
        )


class AgentError(RunnerItem):
    """What older runners sent, only ever when the agent child crashed: AGENT_CHILD_CRASHED."""

    type: Literal["agent_error"]
    message: Message
    session_id: SessionId | None = None
    occurred_at: Time | None = None

    def normalised(self, raw: dict) -> NormalisedEvent:
        return self.build(
            raw,
            code=_AGENT_CHILD_CRASHED.code,
            info=_AGENT_CHILD_CRASHED,
            kind="error",
            message=self.message,
            recoverable=False,
        )


def metrics_details(metrics: Any, ranges: dict[str, tuple[int, int]] = METRIC_RANGES) -> dict:
    """A warning's (or a turn's) metrics as details: the valid values under ``metrics`` (only
    the names in ``ranges``, which the rollups know), and under ``metric_problems`` why each
    other one was left out. A bad value never refuses the item: it still counts, only that
    figure is missing."""
    if type(metrics) is not dict:
        problem = f"must be an object, got {json_type(metrics)} {show(metrics)}"
        return {"metric_problems": {"metrics": problem}}
    valid, problems = {}, {}
    for name in ranges:
        value = metrics.get(name)
        if value is None:  # absent, or null: not sent
            continue
        if type(value) is not int and type(value) is not float:
            problems[name] = f"must be a number, got {json_type(value)} {show(value)}"
        elif problem := metric_range_problem(name, value):
            problems[name] = problem
        else:
            valid[name] = value  # as sent: an integer stays an integer
    return {"metrics": valid, "metric_problems": problems} if problems else {"metrics": valid}


Metrics = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "properties": {
                name: {"type": "number", "minimum": low, "maximum": high}
                for name, (low, high) in METRIC_RANGES.items()
            },
            "description": "Call-quality figures; other keys are dropped. A value of another "
            "type or out of range (or metrics that are no object) never refuses the warning: "
            "it is stored without that value, the reason in details.metric_problems.",
        }
    ),
]


class SessionWarning(RunnerItem):
    """A call-quality warning, named by Telnyx's code (31002) or name (HIGH_JITTER)."""

    type: Literal["session_warning"]
    code: TelnyxCode
    metrics: Metrics | None = None
    message: Message | None = None
    session_id: SessionId
    occurred_at: Time | None = None

    def normalised(self, raw: dict) -> NormalisedEvent:
        return self.build(
            raw,
            code=self.code,
            info=lookup(self.code, sdk="telnyx"),
            kind="warning",
            message=self.message or None,
            recoverable=True,  # a warning describes a call that is still going
            details={} if self.metrics is None else metrics_details(self.metrics),
        )


class SessionEnd(RunnerItem):
    """How a session ended: a Telnyx termination cause (NORMAL_CLEARING) with its codes."""

    type: Literal["session_end"]
    cause: Code
    cause_code: Integer | None = None
    sip_code: Integer | None = None
    sip_reason: Text | None = None
    close_code: Integer | None = None
    duration_ms: Number | None = None
    session_id: SessionId
    occurred_at: Time | None = None

    def normalised(self, raw: dict) -> NormalisedEvent:
        details = termination_details(
            self.cause,
            cause_code=self.cause_code,
            sip_code=self.sip_code,
            sip_reason=self.sip_reason,
            close_code=self.close_code,
            duration_ms=self.duration_ms,
        )
        return self.termination(raw, cause=self.cause, details=details)
