"""The team pages with Django's test client: creating a project, the members page, invitation
links (mailed, shown once, single use, expiring, asking for a new one), roles, removal, leaving,
renaming and deleting, open sign-up, and hostile names kept as text."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from errorsink.projects.models import Invitation, Membership, Project, TeamChange
from errorsink.projects.team import invitation_create

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


def _client(user=None) -> Client:
    client = Client(HTTP_HOST="localhost")
    if user is not None:
        client.force_login(user)
    return client


def _link_on_page(html: str) -> str | None:
    found = re.search(r'id="invitation-link">http://localhost(/invite/[^<]+/)<', html)
    return found.group(1) if found else None


def test_any_signed_in_user_creates_a_project_and_owns_it(charlie):
    client = _client(charlie)
    response = client.post("/projects/new/", {"name": f"  {HOSTILE}  "})
    project = Project.objects.get(name=HOSTILE)
    assert response["Location"] == f"/projects/{project.id}/"
    assert project.role_of(charlie) == Membership.OWNER
    page = client.get("/").content.decode()
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert client.post("/projects/new/", {"name": "   "}).status_code == 302
    assert "Give the project a name" in client.get("/").content.decode()
    assert Project.objects.count() == 1


def test_an_owner_invites_by_email_and_sees_the_link_once(project, alice):
    client = _client(alice)
    response = client.post(f"/projects/{project.id}/members/invite/",
                           {"email": "dana@example.com", "role": "member"})  # fmt: skip
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == ["dana@example.com"] and "Voice bot" in message.subject
    page = client.get(f"/projects/{project.id}/members/").content.decode()
    link = _link_on_page(page)
    assert link and f"http://localhost{link}" in message.body
    assert "Invitation sent to dana@example.com" in page
    assert _link_on_page(client.get(f"/projects/{project.id}/members/").content.decode()) is None
    assert "dana@example.com" in client.get(f"/projects/{project.id}/members/").content.decode()


def test_inviting_a_member_again_says_so_and_keeps_what_was_typed(project, alice, bob):
    bob.email = "bob@example.com"
    bob.save()
    response = _client(alice).post(f"/projects/{project.id}/members/invite/",
                                   {"email": "BOB@example.com", "role": "owner"})  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 422
    assert "BOB@example.com is already a member of Voice bot" in html
    assert 'value="BOB@example.com"' in html and '<option value="owner" selected>' in html
    assert not Invitation.objects.exists() and not mail.outbox


def test_a_member_sees_the_team_but_cannot_change_it(project, bob):
    html = _client(bob).get(f"/projects/{project.id}/members/").content.decode()
    assert "alice" in html and "bob" in html and "Invite someone" not in html
    assert "Leave Voice bot" in html and "Delete this project" not in html


def test_a_new_user_joins_through_the_link_and_lands_in_the_project(project, alice):
    made = invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    visitor = _client()
    page = visitor.get(f"/invite/{made.token}/")
    assert page.status_code == 200 and "Join Voice bot" in page.content.decode()
    assert f'href="/login/?next=/invite/{made.token}/"' in page.content.decode()
    weak = visitor.post(f"/invite/{made.token}/", {"username": "dana", "password1": "short",
                                                    "password2": "short"})  # fmt: skip
    assert weak.status_code == 422 and "too short" in weak.content.decode()
    joined = visitor.post(
        f"/invite/{made.token}/",
        {"username": "dana", "password1": "a long passphrase", "password2": "a long passphrase"},
    )
    assert joined["Location"] == f"/projects/{project.id}/"
    assert visitor.get(joined["Location"]).status_code == 200
    dana = project.memberships.get(user__username="dana")
    assert (dana.role, dana.user.email) == ("member", "dana@example.com")
    assert dana.user.check_password("a long passphrase")
    again = _client().get(f"/invite/{made.token}/")
    assert again.status_code == 410 and "has been used" in again.content.decode()


def test_a_signed_in_user_accepts_with_one_click(project, alice, charlie):
    made = invitation_create(project=project, email="c@example.com", role="owner", by=alice)
    client = _client(charlie)
    assert "Join Voice bot" in client.get(f"/invite/{made.token}/").content.decode()
    assert client.post(f"/invite/{made.token}/")["Location"] == f"/projects/{project.id}/"
    assert project.role_of(charlie) == Membership.OWNER


def test_an_expired_link_says_so_and_asks_the_owners_once(project, alice):
    alice.email = "alice@example.com"
    alice.save()
    made = invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    visitor = _client()
    page = visitor.get(f"/invite/{made.token}/")
    assert page.status_code == 410 and "has expired" in page.content.decode()
    assert "Ask for a new link" in page.content.decode()
    for _ in range(2):
        asked = visitor.post(f"/invite/{made.token}/renew/")
        assert "have been asked to send a new invitation" in asked.content.decode()
    [message] = mail.outbox
    assert message.to == ["alice@example.com"] and "dana@example.com" in message.subject
    assert TeamChange.objects.filter(action="asked for a new link").count() == 1
    assert not project.memberships.filter(user__username="dana").exists()


def test_an_unknown_link_is_a_404_page(project):
    response = _client().get("/invite/made-up/")
    assert response.status_code == 404 and "does not work" in response.content.decode()


def test_roles_removal_and_the_last_owner(project, alice, bob):
    owner, bobs = _client(alice), project.memberships.get(user=bob)
    page = owner.get(f"/projects/{project.id}/members/").content.decode()
    assert "the only owner" in page and "Make member" not in page and "Make owner" in page
    owner.post(f"/projects/{project.id}/members/{bobs.id}/role/", {"role": "owner"})
    assert project.role_of(bob) == Membership.OWNER
    owner.post(f"/projects/{project.id}/members/{bobs.id}/role/", {"role": "member"})
    assert project.role_of(bob) == Membership.MEMBER
    mine = project.memberships.get(user=alice)
    refused = owner.post(f"/projects/{project.id}/members/{mine.id}/role/", {"role": "member"},
                         follow=True)  # fmt: skip
    assert "alice is the only owner of Voice bot" in refused.content.decode()
    left = owner.post(f"/projects/{project.id}/leave/", follow=True)
    assert "You are the only owner" in left.content.decode()
    owner.post(f"/projects/{project.id}/members/{bobs.id}/remove/")
    assert project.role_of(bob) is None
    assert _client(bob).get(f"/projects/{project.id}/").status_code == 404
    history = owner.get(f"/projects/{project.id}/members/").content.decode()
    assert "removed bob" in history and "changed bob&#x27;s role (owner → member)" in history


def test_a_member_leaves(project, bob):
    response = _client(bob).post(f"/projects/{project.id}/leave/")
    assert response["Location"] == "/" and project.role_of(bob) is None


def test_rename_and_delete(project, alice, monkeypatch):
    queued = []
    monkeypatch.setattr("errorsink.tasks.projects_purge.delay", lambda: queued.append(1))
    owner = _client(alice)
    owner.post(f"/projects/{project.id}/rename/", {"name": HOSTILE})
    project.refresh_from_db()
    assert project.name == HOSTILE
    assert HOSTILE not in owner.get(f"/projects/{project.id}/members/").content.decode()
    kept = owner.post(f"/projects/{project.id}/delete/", {"confirm": "Voice bot"}, follow=True)
    assert "does not match" in kept.content.decode()
    gone = owner.post(f"/projects/{project.id}/delete/", {"confirm": HOSTILE}, follow=True)
    assert "being removed in the background" in gone.content.decode()
    assert queued == [1]  # the purge starts now, not at beat's next turn
    assert owner.get(f"/projects/{project.id}/").status_code == 404


def test_open_sign_up_only_when_the_operator_allows_it(settings, db):
    assert _client().get("/signup/").status_code == 404
    assert "Accounts come from an invitation" in _client().get("/login/").content.decode()
    settings.ERRORSINK_OPEN_SIGNUP = True
    assert "Make an account" in _client().get("/login/").content.decode()
    visitor = _client()
    response = visitor.post("/signup/", {"username": "erin", "email": "erin@example.com",
                                         "password1": "a long passphrase",
                                         "password2": "a long passphrase"})  # fmt: skip
    assert response["Location"] == "/"
    assert "You are not a member of any project yet" in visitor.get("/").content.decode()
