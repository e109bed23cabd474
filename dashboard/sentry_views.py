"""A project's Sentry DSN on its page (docs/sentry.md), and the owners' key rotation."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.access import get_owner_membership
from errorsink.projects.models import Project
from errorsink.sentry.keys import sentry_dsn, sentry_key_for, sentry_key_rotate


def sentry_panel(*, request: HttpRequest, project: Project) -> dict[str, str]:
    """The DSN as this browser reaches the dashboard, and the lines that use it in an agent."""
    dsn = sentry_dsn(sentry_key_for(project), request.build_absolute_uri("/"))
    example = "\n".join(
        [
            "import sentry_sdk",
            "",
            f'sentry_sdk.init(dsn="{dsn}", release="my-agent@1.4.2")  # release: the build',
            'sentry_sdk.set_tag("session_id", session_id)  # files it in the session\'s timeline',
        ]
    )
    return {"dsn": dsn, "example": example}


@login_required
@require_POST
def sentry_key_rotate_view(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "rotate its Sentry key")
    sentry_key_rotate(membership.project)
    messages.success(
        request,
        "New Sentry DSN below. SDKs still sending the old one now get 403 “invalid api key”: "
        "deploy the new DSN to your agents.",
    )
    # No anchor: the flash above the panel must be in view.
    return redirect(reverse("project", args=[membership.project.id]))
