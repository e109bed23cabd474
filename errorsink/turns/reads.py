"""A session's turns put together from their spans (docs/turns.md, "Reading a turn").

A turn is stored as several events of kind ``turn``: the turn's own span and a span per stage.
Reading puts them back together: a stage belongs to the turn span that is its parent in the
same trace; a LiveKit ``user_turn`` (a sibling of its reply, not a child) to the first turn of
the trace that starts at or after it. Stages that reached errorsink without a session (they
came before their turn) are found by their trace (index ``event_turn_stages``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models.fields.json import KT

from errorsink.sessions.models import Event

# Callers notice a pause of more than about a second and a half before the bot answers.
SLOW_TURN_MS = 1500
STAGES = (("end_of_turn_ms", "end of turn"), ("stt_ms", "STT"), ("llm_ms", "LLM first token"),
          ("tts_ms", "TTS first byte"))  # fmt: skip
_USER_TURN_REACH = timedelta(seconds=60)  # a user turn and the reply it starts
_STAGE_REACH = timedelta(hours=1)  # a stage starts within its turn, whatever the clocks say


@dataclass
class Turn:
    """One turn as read: its own event, its figures (ms) and the stages that gave them."""

    event: Event
    voice_to_voice_ms: float | None
    stages: dict[str, float] = field(default_factory=dict)  # metric name -> ms
    models: dict[str, str] = field(default_factory=dict)  # part -> provider/model
    input_tokens: int | None = None
    output_tokens: int | None = None
    problems: dict[str, str] = field(default_factory=dict)  # metric name -> why left out

    @property
    def fields(self) -> dict:
        return self.event.details.get("turn", {})

    @property
    def number(self) -> int | None:
        return self.fields.get("number")

    @property
    def interrupted(self) -> bool:
        return bool(self.fields.get("interrupted"))

    slow_ms = SLOW_TURN_MS

    @property
    def slow(self) -> bool:
        return self.voice_to_voice_ms is not None and self.voice_to_voice_ms >= SLOW_TURN_MS

    def as_json(self) -> dict:
        event, fields = self.event, self.fields
        return {
            "number": fields.get("number"), "started_at": event.occurred_at,
            "event_id": event.event_id, "trace_id": fields.get("trace_id"),
            "span_id": fields.get("span_id"), "framework": fields.get("framework"),
            "build_id": event.build_id, "interrupted": self.interrupted,
            "duration_ms": fields.get("duration_ms"),
            "voice_to_voice_ms": self.voice_to_voice_ms,
            **{name: self.stages.get(name) for name, _ in STAGES},
            "slow": self.slow, "models": self.models,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "problems": self.problems,
        }  # fmt: skip


def turns_assemble(events: Iterable[Event], *, project_id: object) -> list[Turn]:
    """The turns among a session's events (in time order), with their stages, including the
    stages stored without a session. One query more, only when the session has turns."""
    parts = [event for event in events if event.kind == Event.TURN]
    turns = {_key(event): Turn(event, _metric(event, "voice_to_voice_ms"))
             for event in parts if event.code == "turn"}  # fmt: skip
    if not turns:
        return []
    for event in turns.values():
        _add_problems(event, event.event)
    stages = [event for event in parts if event.code != "turn"]
    stages += _sessionless_stages(project_id, turns, parts)
    ordered = sorted(turns.values(), key=lambda turn: (turn.event.occurred_at, turn.event.pk))
    for stage in sorted(stages, key=lambda event: (event.occurred_at, event.pk)):
        turn = _turn_of(stage, turns, ordered)
        if turn is not None:
            _add_stage(turn, stage)
    return ordered


def _key(event: Event) -> tuple[str, str]:
    fields = event.details.get("turn", {})
    return fields.get("trace_id", ""), fields.get("span_id", "")


def _metric(event: Event, name: str) -> float | None:
    value = event.details.get("metrics", {}).get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _sessionless_stages(
    project_id: object, turns: dict[tuple[str, str], Turn], known: list[Event]
) -> list[Event]:
    """Stages of these turns' traces stored without a session, read only from the days around
    the turns (a stage happens inside its turn) so that PostgreSQL opens those partitions only."""
    seen = {event.pk for event in known}
    starts = [turn.event.occurred_at for turn in turns.values()]
    found = (
        Event.objects.defer("raw")
        .alias(trace=KT("details__turn__trace_id"))
        .filter(
            project_id=project_id,
            kind=Event.TURN,
            session_id="",
            trace__in={trace for trace, _ in turns},
            occurred_at__gte=min(starts) - _STAGE_REACH,
            occurred_at__lte=max(starts) + _STAGE_REACH,
        )  # fmt: skip
    )
    return [event for event in found if event.pk not in seen]


def _turn_of(stage: Event, turns: dict[tuple[str, str], Turn], ordered: list[Turn]) -> Turn | None:
    fields = stage.details.get("turn", {})
    trace = fields.get("trace_id", "")
    if stage.code != "user_turn":
        return turns.get((trace, fields.get("parent_span_id") or ""))
    for turn in ordered:  # the reply this user turn starts: the next turn of its trace
        if _key(turn.event)[0] != trace or turn.event.occurred_at < stage.occurred_at:
            continue
        if turn.event.occurred_at - stage.occurred_at <= _USER_TURN_REACH:
            return turn
        return None
    return None


def _add_stage(turn: Turn, stage: Event) -> None:
    """Stages come in time order: a stage seen twice in a turn (an LLM call after a tool call,
    TTS per sentence) keeps its first time to first byte, the one the caller waited for."""
    for name, _ in STAGES:
        value = _metric(stage, name)
        if value is not None:
            turn.stages.setdefault(name, value)
    fields = stage.details.get("turn", {})
    model = "/".join(part for part in (fields.get("provider"), fields.get("model")) if part)
    if model:
        turn.models.setdefault(stage.code, model)
    if stage.code == "llm":  # every LLM call of the turn
        turn.input_tokens = _added(turn.input_tokens, fields.get("input_tokens"))
        turn.output_tokens = _added(turn.output_tokens, fields.get("output_tokens"))
    _add_problems(turn, stage)


def _added(total: int | None, more: object) -> int | None:
    if not isinstance(more, int) or isinstance(more, bool):
        return total
    return more if total is None else total + more


def _add_problems(turn: Turn, event: Event) -> None:
    problems = event.details.get("metric_problems")
    if isinstance(problems, dict):
        turn.problems.update(problems)


def timeline_folded(events: list[Event], *, project_id: object) -> list[Event]:
    """A session's events with each turn as one row: the turn's own event carries its Turn
    (``event.turn``) and its stages' events are left out."""
    turns = {turn.event.pk: turn for turn in turns_assemble(events, project_id=project_id)}
    folded = []
    for event in events:
        if event.kind != Event.TURN:
            folded.append(event)
        elif event.pk in turns:
            event.turn = turns[event.pk]
            folded.append(event)
    return folded
