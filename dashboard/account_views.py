"""The ways into errorsink besides signing in (docs/teams.md): an invitation link, open sign-up
where an operator allows it, and asking for a new link when one has expired."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.account_forms import InvitedSignupForm, OpenSignupForm
from errorsink.projects.models import Invitation, Membership, TeamChange
from errorsink.projects.team import (
    TeamChangeRefused,
    invitation_accept,
    invitation_by_token,
    team_change_record,
)

logger = logging.getLogger("dashboard.accounts")

# The invitation a visitor opened, for a sign-in through an identity provider that follows.
INVITATION_SESSION_KEY = "errorsink_invitation_id"
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"
ASK_AGAIN_AFTER = timedelta(hours=1)
ASKED = "asked for a new link"


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = invitation_by_token(token)
    if found is None:
        return render(request, "registration/invitation_spent.html", {"state": "invalid"},
                      status=404)  # fmt: skip
    state = found.state(timezone.now())
    if state != "pending":
        context = {"invitation": found, "state": state, "token": token}
        return render(request, "registration/invitation_spent.html", context, status=410)
    if request.user.is_authenticated:
        if request.method == "POST":
            return _join(request, found, request.user, token)
        return render(request, "registration/invitation.html", {"invitation": found})
    request.session[INVITATION_SESSION_KEY] = {"id": found.id, "at": time.time()}
    form = InvitedSignupForm(request.POST or None, email=found.email)
    if request.method == "POST" and form.is_valid():
        return _sign_up_and_join(request, form, found, token)
    status = 422 if request.method == "POST" else 200
    context = {"invitation": found, "form": form, "token": token}
    return render(request, "registration/invitation.html", context, status=status)


def _sign_up_and_join(request: HttpRequest, form, found: Invitation, token: str) -> HttpResponse:
    """The account and the membership together or neither: one link makes one account, even
    when it is submitted twice at once (the second waits on the invitation's lock, then finds
    it spent, and its account is rolled back)."""
    try:
        with transaction.atomic():
            user = form.save()
            invitation_accept(invitation=found, user=user)
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
        return redirect("invitation", token)
    login(request, user, backend=PASSWORD_BACKEND)
    request.session.pop(INVITATION_SESSION_KEY, None)
    messages.success(request, f"You joined {found.project.name} as {found.role}.")
    return redirect("project", found.project_id)


def _join(request: HttpRequest, found: Invitation, user, token: str) -> HttpResponse:
    try:
        membership = invitation_accept(invitation=found, user=user)
    except TeamChangeRefused as exc:  # spent between the page and the click
        messages.error(request, str(exc))
        return redirect("invitation", token)
    request.session.pop(INVITATION_SESSION_KEY, None)
    messages.success(request, f"You joined {found.project.name} as {membership.role}.")
    return redirect("project", found.project_id)


@require_POST
def invitation_renew(request: HttpRequest, token: str) -> HttpResponse:
    """Whoever holds a spent link may ask the project's owners for a new one, once an hour."""
    found = invitation_by_token(token)
    if found is None:
        raise Http404("No such invitation")
    state = found.state(timezone.now())
    if state not in ("expired", "revoked"):
        return redirect("invitation", token)
    recent = TeamChange.objects.filter(project=found.project, action=ASKED, subject=found.email,
                                       at__gte=timezone.now() - ASK_AGAIN_AFTER)  # fmt: skip
    if not recent.exists():
        team_change_record(project=found.project, actor=None, action=ASKED, subject=found.email)
        _tell_owners(request, found)
    context = {"invitation": found, "state": state, "asked": True}
    return render(request, "registration/invitation_spent.html", context)


def _tell_owners(request: HttpRequest, found: Invitation) -> None:
    owners = Membership.objects.filter(project=found.project, role=Membership.OWNER)
    addresses = sorted({m.user.email for m in owners.select_related("user") if m.user.email})
    if not addresses:
        return
    members_url = request.build_absolute_uri(f"/projects/{found.project_id}/members/")
    body = render_to_string("dashboard/email/invitation_asked.txt",
                            {"invitation": found, "members_url": members_url})  # fmt: skip
    subject = f"{found.email} asks for a new invitation to {found.project.name}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses)
    except Exception as exc:  # recorded on the members page anyway
        logger.warning("could not mail the owners of %s: %s", found.project_id, exc)


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Open sign-up, where the operator allows it (ERRORSINK_OPEN_SIGNUP); else there is none."""
    if not settings.ERRORSINK_OPEN_SIGNUP:
        raise Http404("Accounts come from invitations here: ask a project owner for one")
    if request.user.is_authenticated:
        return redirect("projects")
    form = OpenSignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=PASSWORD_BACKEND)
        messages.success(request, "Welcome: create your first project below.")
        return redirect("projects")
    status = 422 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)
