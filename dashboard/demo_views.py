"""The demo offer of an empty project: its owners load a day of demo data with one click."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.access import get_owner_membership
from errorsink.demo import BUILDS, DEFAULT_HOURS, DEFAULT_SESSIONS
from errorsink.projects.models import Membership, Project
from errorsink.sessions import selectors
from errorsink.tasks import demo_load


def demo_offer(*, request: HttpRequest, project: Project) -> dict | None:
    """What the button of ``dashboard/partials/demo_offer.html`` needs, for owners only."""
    if project.role_of(request.user) != Membership.OWNER:
        return None
    return {
        "url": reverse("demo-load", args=[project.id]),
        "sessions": DEFAULT_SESSIONS,
        "hours": DEFAULT_HOURS,
        "builds": len(BUILDS),
    }


@login_required
@require_POST
def demo_load_view(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "load demo data")
    project = membership.project
    # Only into an empty project: real events must never be mixed with made-up ones by a click.
    if selectors.project_has_events(project_id=project.id):
        messages.info(request, "This project already has events, so no demo data was added.")
        return redirect("project", project.id)
    demo_load.delay(project_id=str(project.id))
    messages.success(
        request,
        f"Demo data is on its way: {DEFAULT_SESSIONS} sessions of the last {DEFAULT_HOURS} "
        f"hours on {len(BUILDS)} builds, pushed through the ingest queue. Errors appear below "
        "as the worker stores them, and the quality figures follow within seconds.",
    )
    return redirect("project", project.id)
