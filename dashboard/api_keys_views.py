"""The API keys page of a project: owners create and revoke keys, members only see the list."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.access import get_membership_or_404, require_owner
from dashboard.shown_once import shown_once_clear, shown_once_get, shown_once_set
from errorsink.projects.api_keys import (
    ApiKeyInvalid,
    api_key_create,
    api_key_revoke,
    api_keys_for_project,
)
from errorsink.projects.models import ApiKey, Membership

NEW_KEY = "new_api_key"


def _render(request, project, role, *, status=200, **extra) -> HttpResponse:
    context = {
        "project": project,
        "is_owner": role == Membership.OWNER,
        "keys": api_keys_for_project(project=project),
        "scopes": ApiKey.SCOPES,
        "api_base": request.build_absolute_uri("/api/v1"),
        "server_url": request.build_absolute_uri("/").rstrip("/"),
        **extra,
    }
    return render(request, "dashboard/api_keys.html", context, status=status)


@never_cache  # the page that shows a new key's plaintext must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    project, role = membership.project, membership.role
    if request.method == "GET":
        response = _render(request, project, role, **_new_key_once(request, project))
        return shown_once_clear(response, NEW_KEY, path=request.path)
    require_owner(membership, "manage API keys")
    name = request.POST.get("name", "")
    scopes = request.POST.getlist("scopes")
    try:
        key, plaintext = api_key_create(
            project=project, scopes=scopes, name=name, created_by=request.user
        )
    except ApiKeyInvalid as exc:
        return _render(
            request, project, role, status=422, form_error=str(exc), form_name=name,
            form_scopes=scopes,
        )  # fmt: skip
    response = redirect("api-keys", project_id=project.id)
    return shown_once_set(response, request, NEW_KEY, f"{key.pk}:{plaintext}", path=request.path)


def _new_key_once(request: HttpRequest, project) -> dict:
    """The key just created, for the page that follows its creation only."""
    new = shown_once_get(request, NEW_KEY)
    if not new:
        return {}
    key_id, _, plaintext = new.partition(":")
    key = ApiKey.objects.filter(pk=key_id, project=project, revoked_at=None).first()
    return {"new_key": key, "new_plaintext": plaintext} if key else {}


@login_required
@require_POST
def api_key_revoke_view(request: HttpRequest, project_id, key_id: int) -> HttpResponse:
    membership = require_owner(get_membership_or_404(request, project_id), "manage API keys")
    project = membership.project
    key = get_object_or_404(ApiKey, pk=key_id, project=project)
    api_key_revoke(key=key)
    return redirect("api-keys", project_id=project.id)
