"""An issue's page: why its events were grouped, its figures, events (paged), sessions, and the
status a member gives it. Live by websocket (dashboard/consumers.py IssueConsumer)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.access import get_membership_or_404
from dashboard.present import error_rows_annotate, sparkline_points
from errorsink.issues.models import STATUSES, Issue
from errorsink.issues.selectors import (
    TREND_HOURS,
    issue_events_page,
    issue_get,
    issue_sessions,
    issue_status_set,
    issue_trends,
)
from errorsink.paging import LIMIT_DEFAULT

STATUS_VERBS = {"resolved": "Resolve", "ignored": "Ignore", "unresolved": "Reopen"}


def _issue_or_404(request: HttpRequest, project_id, issue_id: int) -> tuple[object, Issue]:
    project = get_membership_or_404(request, project_id).project
    issue = issue_get(project_id=project.id, issue_id=issue_id)
    if issue is None:
        raise Http404("No such issue")
    return project, issue


def issue_summary_context(issue: Issue) -> dict:
    """What the live part of the page shows: figures, trend, sessions."""
    trend = issue_trends(issue_ids=[issue.id])[issue.id]
    return {
        "issue": issue,
        "trend": trend,
        "trend_points": sparkline_points(trend, width=240, height=36),
        "trend_total": sum(trend),
        "trend_hours": TREND_HOURS,
        "sessions": issue_sessions(issue=issue),
    }


def issue_events_context(issue: Issue, cursor: str) -> dict:
    page = issue_events_page(issue=issue, cursor=cursor, limit=LIMIT_DEFAULT)
    return {"events": error_rows_annotate(page.items), "next": page.next, "cursor": cursor}


@login_required
def issue_page(request: HttpRequest, project_id, issue_id: int) -> HttpResponse:
    project, issue = _issue_or_404(request, project_id, issue_id)
    cursor = request.GET.get("cursor", "").strip()
    try:
        events = issue_events_context(issue, cursor)
    except ValueError:
        messages.error(request, "That page link is not valid any more; showing the newest events.")
        return redirect("issue", project.id, issue.id)
    context = {
        "project": project,
        **issue_summary_context(issue),
        **events,
        # The newest event's stack, shown once above the list (not on older pages).
        "latest_event": next((e for e in events["events"][:1] if e.frames or e.stack), None)
        if not cursor
        else None,
        "custom_fingerprint": any(part.startswith("custom: ") for part in issue.fingerprint_parts),
        # Every action, the current status's hidden by the stylesheet: the live summary redraw
        # changes the status badge, and with it which actions show, with no form re-rendered
        # outside a request (where it could not carry its CSRF token).
        "actions": [(status, STATUS_VERBS[status]) for status in STATUSES],
        "live_url": f"/ws/projects/{project.id}/issues/{issue.id}/"
        + ("?paged=1" if cursor else ""),
    }
    return render(request, "dashboard/issue.html", context)


@login_required
@require_POST
def issue_status_change(request: HttpRequest, project_id, issue_id: int) -> HttpResponse:
    project, issue = _issue_or_404(request, project_id, issue_id)
    status = request.POST.get("status", "")
    if status not in STATUSES:
        messages.error(request, "Choose resolved, ignored or unresolved.")
    else:
        issue_status_set(issue=issue, status=status)
        messages.success(request, f"Issue marked {status}.")
    # Back where the button was: the issue, or the project's list.
    back = request.POST.get("next", "")
    if back == "project":
        return redirect(reverse("project", args=[project.id]))
    return redirect("issue", project.id, issue.id)
