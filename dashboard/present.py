"""Turning stored events into what the templates show (no database access here)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.urls import reverse

from dashboard.templatetags.when import duration_ms
from errorsink import catalog
from errorsink.quality.selectors import EXPECTED_CAUSES
from errorsink.sessions.models import Event
from errorsink.turns.reads import STAGES as TURN_STAGES
from errorsink.turns.reads import Turn

TERMINATION_FIELDS = (
    ("cause", "cause"),
    ("cause_code", "causeCode"),
    ("sip_code", "sipCode"),
    ("sip_reason", "sipReason"),
    ("close_code", "close code"),
    ("duration_ms", "duration"),
)
# An event further than this from its arrival shows when it happened as well.
SKEW_SHOWN = timedelta(seconds=5)


def session_url(project_id: object, session_id: str) -> str:
    return reverse("session-timeline", args=[project_id, session_id]) if session_id else ""


def error_rows_annotate(events: list[Event]) -> list[Event]:
    for event in events:
        event.code_info = catalog.lookup_event(event.code, event.details, kind=event.kind)
        event.session_url = session_url(event.project_id, event.session_id)
        event.own_message = _own_message(event)
        event.frames = stack_frames(event)
        event.sentry_label = sentry_label(event)
        event.skewed = abs(event.occurred_at - event.received_at) > SKEW_SHOWN
    return events


def stack_frames(event: Event) -> list[dict]:
    """The frames a Sentry SDK sent (kept in the details by the sentry format), innermost
    first as Sentry shows them; [] for events whose stack is only text."""
    details = event.details if isinstance(event.details, dict) else {}
    frames = details.get("frames")
    if not isinstance(frames, list):
        return []
    shown = []
    for frame in reversed(frames):
        if isinstance(frame, dict):
            line = frame.get("line")
            shown.append({"file": str(frame.get("file") or "?"),
                          "function": str(frame.get("function") or "?"),
                          "line": line if isinstance(line, int) else None,
                          "in_app": frame.get("in_app") is True})  # fmt: skip
    return shown


def sentry_label(event: Event) -> str:
    """What a Sentry SDK's event is, said where a catalogued code shows its description: its
    code is an exception type or a level, which no catalog knows."""
    details = event.details if isinstance(event.details, dict) else {}
    if details.get("sdk") != "sentry":
        return ""
    platform = f" ({details['platform']})" if isinstance(details.get("platform"), str) else ""
    if event.stack or details.get("frames"):
        return f"exception from a Sentry SDK{platform}"
    return f"message from a Sentry SDK, level {details.get('level') or 'error'}"


def _own_message(event: Event) -> str:
    """The event's message, or "" when it only repeats what the catalog (or its code) says:
    ingest fills a missing message with the description, which the page shows already."""
    info = event.code_info
    if event.message in ("", event.code) or (
        info is not None and event.message == info.description
    ):
        return ""
    return event.message


def termination_outcome(event: Event) -> str:
    """How a termination reads: an expected outcome (a caller hung up, was busy, did not
    answer) or a failure, as the quality figures split them."""
    return "expected" if event.code in EXPECTED_CAUSES else "failure"


def _offset(delta: timedelta) -> str:
    millis = round(delta.total_seconds() * 1000)
    sign = "-" if millis < 0 else "+"
    millis = abs(millis)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"
    return f"{sign}{minutes}:{seconds:02d}.{millis:03d}"


def timeline_annotate(events: list[Event], *, start: datetime) -> list[Event]:
    """Offset from the session's first event, catalog entry, readable context and cause."""
    for event in events:
        event.code_info = catalog.lookup_event(event.code, event.details, kind=event.kind)
        event.own_message = _own_message(event)
        event.frames = stack_frames(event)
        event.sentry_label = sentry_label(event)
        event.outcome = termination_outcome(event) if event.kind == Event.TERMINATION else ""
        event.offset = _offset(event.occurred_at - start)
        event.context_json = (
            json.dumps(event.customer_context, indent=2, sort_keys=True, ensure_ascii=False)
            if event.customer_context is not None
            else ""
        )
        termination = event.termination if isinstance(event.termination, dict) else {}
        event.termination_rows = [
            (label, _termination_value(key, termination[key]))
            for key, label in TERMINATION_FIELDS
            if termination.get(key) not in (None, "")
        ]
        details = event.details if isinstance(event.details, dict) else {}
        if isinstance(default := details.get("cause_default"), str):  # a Telnyx hangup's
            event.termination_rows.append(("defaulted", f"the SDK's cause {default}"))
        event.metrics_rows = _rows(details.get("metrics"))
        event.metric_problem_rows = _rows(details.get("metric_problems"))
    _turns_drawn([event.turn for event in events if getattr(event, "turn", None) is not None])
    return events


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of a turn's waterfall, placed in percent of the session's longest turn."""

    name: str
    label: str
    ms: float
    left: float
    width: float


def _turns_drawn(turns: list[Turn]) -> None:
    """Each turn's waterfall: its stages one after another, then voice-to-voice from zero, on
    one scale for the whole session so that a slow turn looks slow beside the others."""
    scale = max((max(turn.voice_to_voice_ms or 0, sum(turn.stages.values())) for turn in turns),
                default=0) or 1  # fmt: skip
    for turn in turns:
        bars, at = [], 0.0
        for name, label in TURN_STAGES:
            if (ms := turn.stages.get(name)) is None:
                continue
            # End of turn and STT both count from the end of the caller's speech (LiveKit's
            # transcription delay lies within its end-of-turn delay): side by side.
            start = 0.0 if name == "stt_ms" and "end_of_turn_ms" in turn.stages else at
            bars.append(Bar(name, label, ms, start / scale * 100, _width(ms, scale)))
            at = max(at, start + ms)
        if (total := turn.voice_to_voice_ms) is not None:
            bars.append(Bar("voice_to_voice_ms", "voice-to-voice", total, 0.0,
                            _width(total, scale)))  # fmt: skip
        turn.bars = bars


def _width(ms: float, scale: float) -> float:
    return round(max(ms / scale * 100, 0.5), 2)  # a 3 ms stage still shows


def _termination_value(key: str, value: object) -> object:
    if key == "duration_ms" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{duration_ms(value)} ({value:,} ms)"
    return value


def _rows(value: object) -> list[tuple[str, object]]:
    return sorted(value.items()) if isinstance(value, dict) else []


def sparkline_points(values: list[int], *, width: int = 120, height: int = 24) -> str:
    """SVG polyline points; the top of the box is the busiest hour of this series."""
    peak = max(values) if values and max(values) > 0 else 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (value / peak) * (height - 2):.1f}"
        for i, value in enumerate(values)
    )


def live_url(path: str, **params: str) -> str:
    query = urlencode({key: value for key, value in params.items() if value})
    return f"{path}?{query}" if query else path


def first_event_commands(*, project_id: object, base_url: str) -> dict[str, str]:
    """The exact lines a new project's page offers, with this project's id and real port."""
    item = json.dumps(
        {
            "type": "session_error",
            "code": "AGENT_CHILD_CRASHED",
            "message": "Sorry, something went wrong.",
            "session_id": "first-session",
            "project_id": str(project_id),
            "recoverable": False,
        },
        separators=(",", ":"),
    )
    redis = urlsplit(settings.REDIS_URL)
    cli = settings.ERRORSINK_REDIS_CLI
    args = [cli, "-h", redis.hostname or "127.0.0.1", "-p", str(redis.port or 6379)]
    db = (redis.path or "/0").lstrip("/") or "0"
    if db != "0":
        args += ["-n", db]
    if redis.password:
        args += ["-a", "<redis-password>"]  # never print the real secret on a page
    redis_line = shlex.join([*args, "LPUSH", settings.ERRORSINK_QUEUE, item])
    events_url = f"{base_url.rstrip('/')}/api/v1/projects/{project_id}/events"
    curl_line = shlex.join(
        ["curl", "-X", "POST", events_url, "-H", "Authorization: Bearer <key>",
         "-H", "Content-Type: application/json", "-d", item]
    )  # fmt: skip
    return {"redis_cli": redis_line, "curl": curl_line}
