"""The operations of /api/v1 (docs/api.md). Access is settled by KeyAuth before these run."""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from errorsink.api.auth import KeyAuth
from errorsink.api.errors import ApiError
from errorsink.api.quality_schemas import QualityOut, QualityQuery
from errorsink.api.schemas import (
    CodesOut,
    ErrorOut,
    LatestErrorsOut,
    SessionErrorsOut,
    SessionSettingsOut,
    SessionSettingsPatch,
    SessionsOut,
    TimelineOut,
    settings_out,
)
from errorsink.catalog import all_codes
from errorsink.issues.selectors import errors_page
from errorsink.projects.session_settings import (
    SettingsInvalid,
    session_settings_get,
    session_settings_update,
)
from errorsink.quality.figure_reads import project_quality
from errorsink.quality.selectors import (
    CUSTOM,
    CUSTOM_DAYS_MAX,
    custom_range_problems,
    quality_params_problems,
)
from errorsink.search import ErrorSearch, SessionSearch
from errorsink.sessions import selectors
from errorsink.sessions.listing import sessions_page
from errorsink.sessions.models import Event
from errorsink.sessions.serialise import event_out

router = Router()


def api_errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The error responses a route declares: these and the ones every route may give (400 for
    an address no route accepts, such as one holding a NUL)."""
    return {status: ErrorOut for status in (400, 401, 429, 500, 503, *statuses)}


@router.get(
    "/projects/{project_id}/session-errors",
    response={200: LatestErrorsOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="The project's errors, newest arrival first: the last 20 unless filtered or paged",
    description="Filters combine. Page with the `next` of the previous page as `cursor`: a page "
    "stays correct while new errors arrive. `since`/`until` bound the arrival time.",
    tags=["errors"],
)
def session_errors_latest(request: HttpRequest, project_id: str, search: Query[ErrorSearch]):
    project = request.auth.project
    page = errors_page(project_id=project.id, search=search)
    return {
        "project_id": str(project.id),
        "errors": [event_out(e) for e in page.items],
        "next": page.next,
    }


@router.get(
    "/projects/{project_id}/sessions",
    response={200: SessionsOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="The project's sessions, most recently started first, filtered and paged",
    tags=["sessions"],
)
def sessions_list(request: HttpRequest, project_id: str, search: Query[SessionSearch]):
    page = sessions_page(project_id=request.auth.project_id, search=search)
    return {"sessions": page.items, "next": page.next}


@router.get(
    "/projects/{project_id}/sessions/{path:session_id}/errors",
    response={200: SessionErrorsOut, **api_errors(403, 404)},
    auth=KeyAuth("errors:read"),
    summary="The errors of one session, in the order they happened",
    tags=["errors"],
)
def session_errors(request: HttpRequest, project_id: str, session_id: str):
    project = request.auth.project
    errors = selectors.session_events(
        project_id=project.id, session_id=session_id, kinds=(Event.ERROR,)
    )
    _session_or_404(errors, project_id=project.id, session_id=session_id)
    return {
        "project_id": str(project.id),
        "session_id": session_id,
        "errors": [event_out(e) for e in errors.events],
        "truncated": errors.truncated,
    }


@router.get(
    "/projects/{project_id}/sessions/{path:session_id}/timeline",
    response={200: TimelineOut, **api_errors(403, 404)},
    auth=KeyAuth("errors:read"),
    summary="Every event of one session in order: errors, warnings, termination",
    tags=["errors"],
)
def session_timeline(request: HttpRequest, project_id: str, session_id: str):
    project = request.auth.project
    timeline = selectors.session_events(project_id=project.id, session_id=session_id)
    _session_or_404(timeline, project_id=project.id, session_id=session_id)
    return {
        "project_id": str(project.id),
        "session_id": session_id,
        "events": [event_out(e) for e in timeline.events],
        "truncated": timeline.truncated,
    }


def _session_or_404(found: selectors.SessionEvents, *, project_id: object, session_id: str) -> None:
    # Events found prove the session exists; only an empty list costs a second look.
    if not found.events and not selectors.session_exists(
        project_id=project_id, session_id=session_id
    ):
        raise ApiError(404, "No such session")


@router.get(
    "/projects/{project_id}/session-settings",
    response={200: SessionSettingsOut, **api_errors(403, 404)},
    auth=KeyAuth("settings:read"),
    summary="The crash message, idle timeout and event retention, and the env the next deploy "
    "receives",
    tags=["settings"],
)
def session_settings_read(request: HttpRequest, project_id: str):
    return settings_out(session_settings_get(project=request.auth.project))


@router.patch(
    "/projects/{project_id}/session-settings",
    response={200: SessionSettingsOut, **api_errors(400, 403, 404, 422)},
    auth=KeyAuth("settings:write"),
    summary="Change the crash message, idle timeout (applied on the next deploy) and/or event "
    "retention (applied within minutes)",
    tags=["settings"],
)
def session_settings_patch(request: HttpRequest, project_id: str, changes: SessionSettingsPatch):
    key = request.auth
    try:
        settings = session_settings_update(
            project=key.project,
            changes=changes.model_dump(exclude_unset=True),
            actor=f"api-key:es_{key.prefix}",
        )
    except SettingsInvalid as exc:
        raise ApiError(422, "Invalid session settings", details=exc.errors) from None
    return settings_out(settings)


@router.get(
    "/codes",
    response={200: CodesOut, **api_errors()},
    auth=KeyAuth(),
    summary="The code catalog: every known error, warning and termination code",
    description="Any valid key may read it, whatever its scopes: the catalog is the same for "
    "every project and says nothing about any of them.",
    tags=["codes"],
)
def codes(request: HttpRequest):
    entries = all_codes()
    return {"count": len(entries), "codes": entries}


@router.get(
    "/projects/{project_id}/quality",
    response={200: QualityOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="Call quality of a window: degraded sessions, warnings, terminations, builds",
    description="Counted from rollups that trail ingest by seconds. Windows end with the "
    "current bucket: 1h in minutes, 24h, 7d and 30d in hours (UTC). `since` and `until` "
    "(ISO 8601 with a zone) ask for a custom range instead, widened to whole hours (whole "
    f"minutes within the last three hours), at most {CUSTOM_DAYS_MAX} days.",
    tags=["quality"],
)
def quality(request: HttpRequest, project_id: str, query: Query[QualityQuery]):
    custom = query.window == CUSTOM or query.since is not None or query.until is not None
    problems = quality_params_problems(window=query.window, build_id=query.build_id)
    if custom:
        problems |= custom_range_problems(query.since, query.until)
    if problems:
        raise ApiError(422, details=problems)
    figures = project_quality(project_id=request.auth.project_id, window=query.window,
                              build_id=query.build_id, since=query.since,
                              until=query.until)  # fmt: skip
    # Written as is: at 30 days the answer has some 8,000 series points, and validating them
    # against QualityOut and encoding them with the stdlib took 57 ms of a 180 ms answer. The
    # schema documents the shape; a test holds every answer to it.
    return HttpResponse(orjson.dumps(figures, option=orjson.OPT_UTC_Z),
                        content_type="application/json")  # fmt: skip
