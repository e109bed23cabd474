"""Realistic mixed queue items of every type of docs/formats.md, for benchmarks and load tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

START = datetime(2026, 11, 1, tzinfo=UTC)
ERROR_CODES = [
    "AGENT_HANDLER_FAILED",
    "AGENT_CHILD_CRASHED",
    "RUNNER_INTERNAL",
    "SESSION_END_FAILED",
    "IDLE_TIMEOUT_CALLBACK_FAILED",
    "WEBRTC_CONNECTION_FAILED",
]
WARNINGS = [
    ("HIGH_JITTER", {"jitter_ms": 48.5}),
    (31001, {"rtt_ms": 420}),
    ("HIGH_PACKET_LOSS", {"packet_loss_pct": 7.5}),
    (31004, {"mos": 2.9}),
]


def _when(n: int) -> str:
    return iso(START + timedelta(milliseconds=n * 37))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _session_error(n: int, project: str, session: str) -> dict:
    return {
        "type": "session_error",
        "code": ERROR_CODES[n % len(ERROR_CODES)],
        "message": f"handler threw on turn {n}",
        "session_id": session,
        "project_id": project,
        "build_id": "build-42",
        "stack": f"Error: demo failure {n}\n    at onUserSpeechFinal",
        "recoverable": False,
        "customer_context": {"userId": f"u_{n % 97}", "tier": "pro"},
        "occurred_at": _when(n),
    }


def _warning(n: int, project: str, session: str) -> dict:
    code, metrics = WARNINGS[n % len(WARNINGS)]
    return {
        "type": "session_warning",
        "project_id": project,
        "session_id": session,
        "code": code,
        "metrics": metrics,
        "occurred_at": _when(n),
    }


def _end(n: int, project: str, session: str) -> dict:
    return {
        "type": "session_end",
        "project_id": project,
        "session_id": session,
        "cause": "USER_BUSY",
        "cause_code": 17,
        "sip_code": 486,
        "sip_reason": "Busy Here",
        "occurred_at": _when(n),
    }


def _telnyx(n: int, project: str, session: str) -> dict:
    event = {
        "error": {"code": 45002, "name": "WEBSOCKET_ERROR", "message": "Connection to server lost"},
        "sessionId": session,
    }
    return {
        "type": "sdk_event",
        "sdk": "telnyx",
        "name": "telnyx.error",
        "project_id": project,
        "event": event,
        "occurred_at": _when(n),
    }


def _onebudd(n: int, project: str, session: str) -> dict:
    event = {
        "type": "error",
        "version": "1",
        "session_id": session,
        "timestamp": 1699900000000 + n,
        "payload": {
            "code": "stt_failed",
            "message": "Speech recognition failed: invalid audio format",
            "fatal": False,
        },
    }
    return {
        "type": "sdk_event",
        "sdk": "onebudd",
        "name": "error",
        "project_id": project,
        "event": event,
    }


def _agent_error(n: int, project: str, session: str) -> dict:
    return {
        "type": "agent_error",
        "message": f"legacy crash {n}",
        "project_id": project,
        "session_id": session,
        "occurred_at": _when(n),
    }


MAKERS = [_session_error, _warning, _warning, _end, _telnyx, _onebudd, _agent_error]


def mixed_items(
    count: int, project_id: str, *, sessions: int = 2000, seed: int = 7,
    start: datetime | None = None, step: timedelta = timedelta(milliseconds=1),
) -> list[bytes]:  # fmt: skip
    """`count` distinct items; one in four relies on a derived (content-hash) event id.

    Items are dated from a fixed day in the past unless `start` is given: then item n happened
    at start + n x step, as live traffic does (recent events also get the rollups' minute rows).
    """
    rng = random.Random(seed)
    items = []
    for n in range(count):
        session = f"sess-{rng.randrange(sessions):05d}"
        item = MAKERS[n % len(MAKERS)](n, project_id, session)
        if n % 4:
            item["event_id"] = f"bench-{n}"
        if start is not None:
            item["occurred_at"] = iso(start + n * step)
        items.append(orjson.dumps(item))
    return items
