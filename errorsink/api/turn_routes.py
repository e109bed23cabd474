"""The turn and latency operations of /api/v1 (docs/turns.md)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from errorsink.api.auth import KeyAuth
from errorsink.api.errors import ApiError
from errorsink.api.routes import api_errors
from errorsink.api.turn_schemas import LatencyOut, LatencyQuery, TurnsOut
from errorsink.quality.selectors import quality_params_problems
from errorsink.sessions import selectors
from errorsink.turns.figures import project_latency
from errorsink.turns.reads import turns_assemble

router = Router()


@router.get(
    "/projects/{project_id}/sessions/{path:session_id}/turns",
    response={200: TurnsOut, **api_errors(403, 404)},
    auth=KeyAuth("errors:read"),
    summary="The turns of one session, each with voice-to-voice and its stages' latencies",
    tags=["turns"],
)
def session_turns(request: HttpRequest, project_id: str, session_id: str):
    project = request.auth.project
    timeline = selectors.session_turn_events(project_id=project.id, session_id=session_id)
    if not timeline.events and not selectors.session_exists(
        project_id=project.id, session_id=session_id
    ):
        raise ApiError(404, "No such session")
    turns = turns_assemble(timeline.events, project_id=project.id)
    return {
        "project_id": str(project.id),
        "session_id": session_id,
        "turns": [turn.as_json() for turn in turns],
        "truncated": timeline.truncated,
    }


@router.get(
    "/projects/{project_id}/latency",
    response={200: LatencyOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="Voice-to-voice and per-stage latency of a window, per build, with the slowest turns",
    description="From the same rollups as the quality figures (seconds behind ingest). "
    "Windows end with the current bucket: 1h in minutes, 24h, 7d and 30d in hours (UTC).",
    tags=["turns"],
)
def latency(request: HttpRequest, project_id: str, query: Query[LatencyQuery]):
    problems = quality_params_problems(window=query.window, build_id=query.build_id)
    if problems:
        raise ApiError(422, details=problems)
    return project_latency(project_id=request.auth.project_id, window=query.window,
                           build_id=query.build_id)  # fmt: skip
