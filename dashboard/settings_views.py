"""Session settings panel: owners edit the crash TTS message, idle timeout, event retention and
ingest quota inline (htmx)."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from dashboard.access import get_membership_or_404, require_owner
from errorsink.projects.models import (
    RETENTION_DAYS_MAX,
    RETENTION_DAYS_MIN,
    Membership,
    Project,
    SessionSettings,
)
from errorsink.projects.session_settings import (
    EDITABLE_FIELDS,
    ERROR_MESSAGE_MAX,
    IDLE_TIMEOUT_MAX,
    IDLE_TIMEOUT_MIN,
    INGEST_QUOTA_MAX,
    SettingsInvalid,
    session_settings_get,
    session_settings_history,
    session_settings_update,
)

PANEL_TEMPLATE = "dashboard/settings_panel.html"
FIELD_LABELS = {
    "error_message": "Crash TTS message",
    "idle_timeout_seconds": "Idle timeout",
    "retention_days": "Event retention",
    "ingest_quota": "Ingest quota",
}


def settings_panel_context(
    *,
    project: Project,
    role: str | None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    settings: SessionSettings | None = None,
) -> dict:
    """Everything the panel shows. `values` override what the inputs hold (the rejected input
    after an invalid save, so nothing typed is lost), while deploy_env always shows what is
    stored."""
    settings = settings or session_settings_get(project=project)
    retention_days = settings.project.retention_days
    shown = {
        "error_message": settings.error_message,
        "idle_timeout_seconds": str(settings.idle_timeout_seconds),
        "retention_days": str(retention_days),
        "ingest_quota": _quota_text(settings.project.ingest_quota),
        **(values or {}),
    }
    return {
        "project": project,
        "role": role,
        "can_edit": role == Membership.OWNER,
        "settings": settings,
        "deploy_env": settings.deploy_env(),
        "retention_days": retention_days,
        "ingest_quota": settings.project.ingest_quota,
        "ingest_quota_default": django_settings.ERRORSINK_INGEST_QUOTA,
        "values": shown,
        "errors": errors or {},
        "saved": saved,
        "history": session_settings_history(project=project, limit=10),
        "limits": {
            "error_message_max": ERROR_MESSAGE_MAX,
            "idle_timeout_min": IDLE_TIMEOUT_MIN,
            "idle_timeout_max": IDLE_TIMEOUT_MAX,
            "retention_min": RETENTION_DAYS_MIN,
            "retention_max": RETENTION_DAYS_MAX,
            "ingest_quota_max": INGEST_QUOTA_MAX,
        },
    }


def _quota_text(quota: int | None) -> str:
    return "" if quota is None else str(quota)  # empty: the server's default


def _readable_errors(errors: dict[str, str]) -> dict[str, str]:
    """The service names fields by their API names; beside an input the label reads better."""
    readable = {}
    for field, message in errors.items():
        label = FIELD_LABELS.get(field, field)
        readable[field] = f"{label} {message.removeprefix(f'{field} ')}"
    return readable


def _render_panel(request: HttpRequest, context: dict) -> HttpResponse:
    # htmx swaps just the panel; a plain request (no JS, a bookmark) gets the whole page.
    partial = request.htmx and not request.htmx.history_restore_request
    template = f"{PANEL_TEMPLATE}#panel" if partial else PANEL_TEMPLATE
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def session_settings(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    project, role = membership.project, membership.role
    if request.method == "GET":
        return _render_panel(request, settings_panel_context(project=project, role=role))

    require_owner(membership, "change session settings")
    submitted = {field: request.POST[field] for field in EDITABLE_FIELDS if field in request.POST}
    try:
        settings = session_settings_update(project=project, changes=submitted, user=request.user)
    except SettingsInvalid as exc:
        context = settings_panel_context(
            project=project,
            role=role,
            values=submitted,
            errors=_readable_errors(exc.errors),
        )
        return _render_panel(request, context)
    context = settings_panel_context(project=project, role=role, saved=True, settings=settings)
    return _render_panel(request, context)
