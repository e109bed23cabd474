"""Who single sign-on lets in, without a browser (the flow itself: test_sso_browser.py): an
invitation opened in this browser counts for a few minutes only, a verified address with a
pending invitation counts, an unverified one never does."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from dashboard.account_views import INVITATION_SESSION_KEY
from dashboard.sso import OPENED_FOR_SECONDS, SocialAccountAdapter
from errorsink.projects.team import invitation_create

pytestmark = pytest.mark.django_db


def _request(opened=None):
    request = RequestFactory().get("/accounts/oidc/oidc/login/callback/")
    request.session = SessionStore()
    if opened is not None:
        request.session[INVITATION_SESSION_KEY] = opened
    return request


def _login(email: str, verified: bool):
    address = SimpleNamespace(email=email, verified=verified)
    return SimpleNamespace(email_addresses=[address])


def test_who_may_sign_up_through_a_provider(project, alice, settings):
    made = invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    adapter, stranger = SocialAccountAdapter(), _login("mallory@example.com", True)
    assert adapter.is_open_for_signup(_request(), _login("dana@example.com", True))
    assert adapter.is_open_for_signup(_request(), _login("DANA@example.com", True))
    assert not adapter.is_open_for_signup(_request(), _login("dana@example.com", False))
    assert not adapter.is_open_for_signup(_request(), stranger)
    fresh = {"id": made.invitation.id, "at": time.time()}
    assert adapter.is_open_for_signup(_request(fresh), stranger)
    stale = {"id": made.invitation.id, "at": time.time() - OPENED_FOR_SECONDS - 1}
    assert not adapter.is_open_for_signup(_request(stale), stranger)
    settings.ERRORSINK_OPEN_SIGNUP = True
    assert adapter.is_open_for_signup(_request(), stranger)
