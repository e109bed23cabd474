"""Fixtures for the dashboard tests: events written straight to the database."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from errorsink.sessions.models import Event

_seq = itertools.count(1)


def event_create(project, **fields) -> Event:
    """An event row as the ingest worker would store it (received now unless told)."""
    now = timezone.now()
    n = next(_seq)
    values = dict(
        event_id=f"test-{n}", session_id="sess-1", kind=Event.ERROR, code="AGENT_CHILD_CRASHED",
        message=f"crash {n}", occurred_at=now, received_at=now, source="agent", severity="high",
        recoverable=False, build_id="build-1", item_type="session_error", raw={},
    )  # fmt: skip
    values.update(fields)
    return Event.objects.create(project=project, **values)


@pytest.fixture
def make_event():
    return event_create


@pytest.fixture
def session_events(project):
    """One session: an error, three warnings and a hangup, stored out of time order."""
    start = timezone.now() - timedelta(minutes=5)
    at = lambda seconds: start + timedelta(seconds=seconds)  # noqa: E731
    common = dict(session_id="call-42", build_id="b-7", customer_context={"userId": "u_123"})
    return [
        event_create(
            project,
            kind="termination",
            code="USER_BUSY",
            message="Call ended",
            occurred_at=at(40),
            source="client",
            severity="low",
            recoverable=False,
            item_type="session_end",
            details={
                "termination": {
                    "cause": "USER_BUSY",
                    "cause_code": 17,
                    "sip_code": 486,
                    "sip_reason": "Busy Here",
                    "close_code": 1000,
                    "duration_ms": 40000,
                }
            },
            **common,
        ),
        event_create(
            project,
            kind="warning",
            code="31002",
            name="HIGH_JITTER",
            message="High jitter detected",
            occurred_at=at(10),
            source="client",
            severity="medium",
            recoverable=True,
            item_type="session_warning",
            details={"sdk": "telnyx", "metrics": {"jitter_ms": 48}},
            **common,
        ),
        event_create(
            project,
            kind="error",
            code="AGENT_HANDLER_FAILED",
            message="demo failure",
            occurred_at=at(0),
            stack="Error: demo failure\n    at handler (agent.js:3)",
            **common,
        ),
        event_create(
            project,
            kind="warning",
            code="HIGH_PACKET_LOSS",
            occurred_at=at(20),
            message="Packet loss",
            source="client",
            severity="medium",
            recoverable=True,
            item_type="session_warning",
            details={"sdk": "telnyx"},
            **common,
        ),
        event_create(
            project,
            kind="warning",
            code="31004",
            occurred_at=at(30),
            message="Low MOS",
            source="client",
            severity="medium",
            recoverable=True,
            item_type="session_warning",
            details={"sdk": "telnyx"},
            **common,
        ),
    ]
