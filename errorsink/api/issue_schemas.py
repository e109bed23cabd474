"""Response shapes of the issues routes (docs/issues.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from errorsink.api.schemas import EventOut
from errorsink.issues.models import STATUSES, Issue


class IssueOut(Schema):
    id: int
    title: str
    code: str
    status: Literal[*STATUSES]
    regressed: bool = Field(..., description="A new event came after it was resolved.")
    count: int = Field(..., description="Events.")
    sessions: int = Field(..., description="Distinct sessions.")
    first_seen: datetime
    last_seen: datetime
    builds: list[str]
    fingerprint: list[str] = Field(
        ..., description='Why its events were grouped: "code: …", "message: …" with variable '
        'parts masked, "frame: …", or an item\'s own "custom: …" parts.'
    )  # fmt: skip


class IssuesOut(Schema):
    issues: list[IssueOut]
    next: str | None = Field(..., description="Cursor of the next page; null on the last.")


class IssueEventsOut(Schema):
    issue: IssueOut
    events: list[EventOut] = Field(..., description="Newest arrival first.")
    next: str | None


class IssuePatch(Schema):
    model_config = ConfigDict(extra="forbid")

    status: Literal[*STATUSES]


def issue_out(issue: Issue) -> dict:
    return {
        "id": issue.id, "title": issue.title, "code": issue.code, "status": issue.status,
        "regressed": issue.regressed, "count": issue.event_count,
        "sessions": issue.session_count, "first_seen": issue.first_seen,
        "last_seen": issue.last_seen, "builds": issue.builds,
        "fingerprint": issue.fingerprint_parts,
    }  # fmt: skip
