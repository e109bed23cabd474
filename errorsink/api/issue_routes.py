"""The issues of a project (docs/issues.md): triage lists, one issue's events, its status."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema
from pydantic import field_validator

from errorsink.api.auth import KeyAuth
from errorsink.api.errors import ApiError
from errorsink.api.issue_schemas import (
    IssueEventsOut,
    IssueOut,
    IssuePatch,
    IssuesOut,
    issue_out,
)
from errorsink.api.routes import api_errors
from errorsink.issues.models import Issue
from errorsink.issues.selectors import (
    issue_events_after,
    issue_events_page,
    issue_get,
    issue_status_set,
    issues_page,
)
from errorsink.paging import LIMIT_DEFAULT, LIMIT_MAX
from errorsink.search import IssueSearch
from errorsink.sessions.serialise import event_out

router = Router(tags=["issues"])
# A bigint: a larger id is no issue at all, not a database error.
IssueId = Annotated[int, Path(..., ge=1, le=2**63 - 1)]


@router.get(
    "/projects/{project_id}/issues",
    response={200: IssuesOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="Issues (errors grouped by fingerprint), filtered and paged",
    description="Unresolved by default, newest activity first. Page with the `next` of the "
    "previous page as `cursor`: a page stays correct while new events arrive.",
)
def issues_list(request: HttpRequest, project_id: str, search: Query[IssueSearch]):
    page = issues_page(project_id=request.auth.project_id, search=search)
    return {"issues": [issue_out(issue) for issue in page.items], "next": page.next}


def _issue_or_404(request: HttpRequest, issue_id: IssueId) -> Issue:
    issue = issue_get(project_id=request.auth.project_id, issue_id=issue_id)
    if issue is None:
        raise ApiError(404, "No such issue")
    return issue


@router.get(
    "/projects/{project_id}/issues/{issue_id}",
    response={200: IssueOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="One issue",
)
def issue_read(request: HttpRequest, project_id: str, issue_id: IssueId):
    return issue_out(_issue_or_404(request, issue_id))


@router.patch(
    "/projects/{project_id}/issues/{issue_id}",
    response={200: IssueOut, **api_errors(400, 403, 404, 422)},
    auth=KeyAuth("errors:write"),
    summary="Resolve, ignore or reopen an issue",
    description="Setting a status also clears `regressed`. A new event on a resolved issue "
    "reopens it as regressed; an ignored issue stays ignored.",
)
def issue_patch(request: HttpRequest, project_id: str, issue_id: IssueId, change: IssuePatch):
    issue = _issue_or_404(request, issue_id)
    return issue_out(issue_status_set(issue=issue, status=change.status))


class IssueEventsQuery(Schema):
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="Page size.")
    cursor: str = Field("", max_length=500, description='The "next" of the previous page.')

    @field_validator("cursor")
    @classmethod
    def _cursor_readable(cls, cursor: str) -> str:
        issue_events_after(cursor)
        return cursor


@router.get(
    "/projects/{project_id}/issues/{issue_id}/events",
    response={200: IssueEventsOut, **api_errors(403, 404, 422)},
    auth=KeyAuth("errors:read"),
    summary="The events of one issue, newest arrival first",
)
def issue_events(
    request: HttpRequest, project_id: str, issue_id: IssueId, paging: Query[IssueEventsQuery]
):
    issue = _issue_or_404(request, issue_id)
    page = issue_events_page(issue=issue, cursor=paging.cursor, limit=paging.limit)
    return {
        "issue": issue_out(issue),
        "events": [event_out(event) for event in page.items],
        "next": page.next,
    }
