"""A project's dead letters, for its owners: how many, grouped by reason, a sample of each, and
requeue or discard per reason (errorsink/ingest/dead_letters.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.access import get_owner_membership
from errorsink.ingest.dead_letters import (
    SAMPLE_CHARS,
    dead_letters_discard,
    dead_letters_requeue,
    project_dead_letters,
)
from errorsink.ingest.queue import dead_letters_dropped_name, redis_client


def _owned_project(request: HttpRequest, project_id):
    action = "see and act on its dead letters"
    return get_owner_membership(request, project_id, action).project


@login_required
def dead_letters(request: HttpRequest, project_id) -> HttpResponse:
    project = _owned_project(request, project_id)
    found = project_dead_letters(project_id=project.id)
    dropped = int(redis_client().get(dead_letters_dropped_name()) or 0)
    context = {"project": project, "found": found, "sample_chars": SAMPLE_CHARS,
               "dropped": dropped}  # fmt: skip
    return render(request, "dashboard/dead_letters.html", context)


@login_required
@require_POST
def dead_letters_act(request: HttpRequest, project_id) -> HttpResponse:
    project = _owned_project(request, project_id)
    action, group = request.POST.get("action", ""), request.POST.get("group", "")
    seen = request.POST.get("seen_until", "")
    if action == "requeue":
        done = dead_letters_requeue(project_id=project.id, group_key=group, seen_until=seen)
        messages.success(
            request,
            f"Requeued {done} item{'s' if done != 1 else ''}: the worker stores each again, or "
            "dead-letters it again with its reason.",
        )
    elif action == "discard":
        done = dead_letters_discard(project_id=project.id, group_key=group, seen_until=seen)
        messages.success(request, f"Discarded {done} dead letter{'s' if done != 1 else ''}.")
    else:
        messages.error(request, "Choose requeue or discard.")
    return redirect("dead-letters", project.id)
