"""Single sign-on through the team's identity provider (django-allauth; docs/teams.md).

Who may come in. An identity provider vouches for who someone is, not that they belong here:
a first sign-in makes an account only for someone invited (the invitation link opened in this
browser, or a pending invitation to an address the provider says is verified), or when the
operator opened sign-up. Whoever signs in this way joins every project such an invitation names.
"""

from __future__ import annotations

import logging
import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from dashboard.account_views import INVITATION_SESSION_KEY, PASSWORD_BACKEND
from errorsink.projects.models import Invitation
from errorsink.projects.team import TeamChangeRefused, invitation_accept, invitations_for_email

logger = logging.getLogger("dashboard.sso")

# An invitation opened in a browser counts for a provider sign-in that follows within this
# time; later, someone else at the same browser would inherit it.
OPENED_FOR_SECONDS = 15 * 60


def _opened_invitation(request: HttpRequest) -> Invitation | None:
    """The invitation opened in this browser in the last few minutes, if still pending."""
    opened = request.session.get(INVITATION_SESSION_KEY)
    if not isinstance(opened, dict) or time.time() - opened.get("at", 0) > OPENED_FOR_SECONDS:
        return None
    invitation_id = opened.get("id")
    found = (
        Invitation.objects.select_related("project")
        .filter(id=invitation_id, project__deleted_at=None)
        .first()
    )
    return found if found and found.state(timezone.now()) == "pending" else None


def _verified_emails(sociallogin) -> list[str]:
    return [address.email for address in sociallogin.email_addresses if address.verified]


def _invitations_for(request: HttpRequest, sociallogin) -> list[Invitation]:
    found = {}
    opened = _opened_invitation(request)
    if opened is not None:
        found[opened.id] = opened
    for email in _verified_emails(sociallogin):
        for invitation in invitations_for_email(email):
            found.setdefault(invitation.id, invitation)
    return list(found.values())


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.ERRORSINK_OPEN_SIGNUP

    def post_login(self, request: HttpRequest, user, *, signal_kwargs=None, redirect_url=None,
                   **kwargs):  # fmt: skip
        """After a sign-in through a provider: join what the invitations name, and land on
        the (last) project joined."""
        sociallogin = (signal_kwargs or {}).get("sociallogin")
        if sociallogin is not None:
            joined = join_invitations(request, user, sociallogin)
            if joined is not None:
                redirect_url = reverse("project", args=[joined])
        return super().post_login(request, user, signal_kwargs=signal_kwargs,
                                  redirect_url=redirect_url, **kwargs)  # fmt: skip


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin) -> bool:
        return settings.ERRORSINK_OPEN_SIGNUP or bool(_invitations_for(request, sociallogin))

    def pre_social_login(self, request: HttpRequest, sociallogin) -> None:
        # The session remembers the user through Django's model backend, as for a password
        # sign-in (allauth's own backend would check passwords a second time on every sign-in).
        sociallogin.user.backend = PASSWORD_BACKEND


def join_invitations(request: HttpRequest, user, sociallogin) -> str | None:
    """Accept the invitations that name this person; the id of the last project joined."""
    joined = None
    for invitation in _invitations_for(request, sociallogin):
        try:
            membership = invitation_accept(invitation=invitation, user=user)
        except TeamChangeRefused:
            continue  # spent a moment ago: nothing to join
        messages.success(request, f"You joined {invitation.project.name} as {membership.role}.")
        joined = str(invitation.project_id)
    request.session.pop(INVITATION_SESSION_KEY, None)
    return joined
