"""The turn and latency operations of /api/v1 (docs/turns.md)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from errorsink.api.auth import KeyAuth
from errorsink.api.errors import ApiError
from errorsink.api.routes import api_errors
from errorsink.api.turn_schemas import TurnsOut
from errorsink.sessions import selectors
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
    timeline = selectors.session_events(project_id=project.id, session_id=session_id)
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
