"""A project's sessions, most recently started first, each linked to its timeline; the "find a
session" form of the project page lands here too."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dashboard.access import get_membership_or_404
from errorsink import catalog
from errorsink.search import SessionSearch, validated_leniently
from errorsink.sessions import selectors
from errorsink.sessions.listing import NO_END, sessions_page

CHOICES = [("", "any"), ("true", "yes"), ("false", "no")]


def _search(request: HttpRequest) -> tuple[SessionSearch, list[str]]:
    """The filters of the URL; a value the model refuses is named and left out. Only those the
    URL has: an absent page size is the default one, not an empty value to complain of."""
    params = {key: request.GET[key] for key in SessionSearch.model_fields if key in request.GET}
    return validated_leniently(SessionSearch, params)


@login_required
def session_list(request: HttpRequest, project_id) -> HttpResponse:
    project = get_membership_or_404(request, project_id).project
    wanted = request.GET.get("session_id", "").strip()
    if wanted:  # the project page's "find a session": straight to it when it exists
        if selectors.session_exists(project_id=project.id, session_id=wanted):
            return redirect("session-timeline", project.id, wanted)
        messages.error(request, f"No session {wanted!r} in this project; sessions that start "
                       "with it are listed below.")  # fmt: skip
        return redirect(f"{request.path}?{urlencode({'q': wanted})}")
    search, problems = _search(request)
    page = sessions_page(project_id=project.id, search=search)
    filled = search.filled()
    filtered = bool(filled)
    if search.limit != SessionSearch.model_fields["limit"].default:
        filled["limit"] = str(search.limit)
    context = {
        "project": project,
        "sessions": page.items,
        "search": search,
        "problems": problems,
        "filtered": filtered,
        "newest_query": urlencode(filled),
        "older_query": urlencode({**filled, "cursor": page.next}) if page.next else "",
        "paged": bool(search.cursor),
        "choices": CHOICES,
        "no_end": NO_END,
        "end_causes": sorted(
            info.code for info in catalog.all_codes() if info.kind == "termination"
        ),  # fmt: skip
    }
    return render(request, "dashboard/sessions.html", context)
