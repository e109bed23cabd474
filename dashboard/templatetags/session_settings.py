"""`{% session_settings_panel project %}`: the session settings panel, for any project page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from dashboard.settings_views import FIELD_LABELS, PANEL_TEMPLATE, settings_panel_context
from errorsink.projects.models import Project

register = template.Library()


@register.inclusion_tag(f"{PANEL_TEMPLATE}#widget", takes_context=True)
def session_settings_panel(context: template.Context, project: Project) -> dict:
    request = context.get("request")
    user = request.user if request is not None else context.get("user")
    # The role decides read-only or editable; a non-member gets nothing rendered at all.
    role = project.role_of(user) if user is not None and user.is_authenticated else None
    return settings_panel_context(project=project, role=role)


@register.filter
def setting_label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


@register.filter
def relative_time(value: datetime) -> str:
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, depth=1)} ago"
