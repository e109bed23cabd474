"""A project's team: invitations (single use, expiring, one live link per person), roles with
at least one owner always, removal and leaving, renaming; every change recorded."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from errorsink.projects.models import Invitation, Membership, TeamChange
from errorsink.projects.services import project_add_member, project_create
from errorsink.projects.team import (
    CREATED,
    TeamChangeRefused,
    invitation_accept,
    invitation_by_token,
    invitation_create,
    invitation_revoke,
    invitations_for_email,
    invitations_pending,
    member_remove,
    member_set_role,
    project_rename,
)

pytestmark = pytest.mark.django_db


def _changes(project) -> list[tuple[str, str, str, str]]:
    """The project's history after its creation."""
    rows = TeamChange.objects.filter(project=project).exclude(action=CREATED).order_by("at", "id")
    return [(c.actor_name, c.action, c.subject, c.detail) for c in rows]


def test_the_history_starts_with_the_creation(project):
    [created] = TeamChange.objects.filter(project=project)
    assert (created.actor_name, created.describe()) == ("alice", "created the project")


def test_an_invitation_makes_a_member_once(project, alice, django_user_model):
    made = invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    assert made.invitation.token_hash != made.token and made.token not in made.invitation.token_hash
    found = invitation_by_token(made.token)
    assert found == made.invitation and found.state(timezone.now()) == "pending"
    dana = django_user_model.objects.create_user("dana", email="dana@example.com")
    membership = invitation_accept(invitation=found, user=dana)
    assert (membership.project, membership.role) == (project, Membership.MEMBER)
    with pytest.raises(TeamChangeRefused, match="already been used"):
        invitation_accept(invitation=found, user=dana)
    erin = django_user_model.objects.create_user("erin")
    with pytest.raises(TeamChangeRefused, match="already been used"):
        invitation_accept(invitation=found, user=erin)  # a forwarded link is spent too
    assert not Membership.objects.filter(project=project, user=erin).exists()
    assert _changes(project) == [("alice", "invited", "dana@example.com", "as member"),
                                 ("dana", "joined", "dana@example.com", "as member")]  # fmt: skip


def test_an_expired_or_withdrawn_link_joins_nobody(project, alice, django_user_model):
    dana = django_user_model.objects.create_user("dana")
    expired = invitation_create(project=project, email="a@example.com", role="member", by=alice)
    Invitation.objects.filter(id=expired.invitation.id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(TeamChangeRefused, match="expired"):
        invitation_accept(invitation=expired.invitation, user=dana)
    withdrawn = invitation_create(project=project, email="b@example.com", role="owner", by=alice)
    invitation_revoke(invitation=withdrawn.invitation, by=alice)
    with pytest.raises(TeamChangeRefused, match="withdrawn"):
        invitation_accept(invitation=withdrawn.invitation, user=dana)
    assert not Membership.objects.filter(user=dana).exists()
    assert invitations_pending(project=project) == []


def test_a_new_invitation_replaces_the_pending_one(project, alice):
    first = invitation_create(project=project, email="Dana@Example.com", role="member", by=alice)
    second = invitation_create(project=project, email="dana@example.com", role="owner", by=alice)
    first.invitation.refresh_from_db()
    assert first.invitation.state(timezone.now()) == "revoked"
    assert invitations_pending(project=project) == [second.invitation]
    assert invitations_for_email("DANA@example.com") == [second.invitation]


@pytest.mark.parametrize("email,role,why", [
    ("bob@example.com", "member", "already a member"),
    ("not an address", "member", "not an email address"),
    ("", "member", "not an email address"),
    ("dana@example.com", "admin", "Unknown role"),
])  # fmt: skip
def test_invitations_refused(project, alice, bob, email, role, why):
    bob.email = "bob@example.com"
    bob.save()
    with pytest.raises(TeamChangeRefused, match=why):
        invitation_create(project=project, email=email, role=role, by=alice)
    assert not Invitation.objects.exists()


def test_an_owner_invitation_raises_an_existing_member(project, alice, bob):
    made = invitation_create(project=project, email="bob2@example.com", role="owner", by=alice)
    assert invitation_accept(invitation=made.invitation, user=bob).role == Membership.OWNER


def test_the_last_owner_can_neither_leave_nor_be_demoted(project, alice, bob):
    own = project.memberships.get(user=alice)
    with pytest.raises(TeamChangeRefused, match="only owner"):
        member_set_role(membership=own, role=Membership.MEMBER, by=alice)
    with pytest.raises(TeamChangeRefused, match="You are the only owner"):
        member_remove(membership=own, by=alice)
    bobs = member_set_role(membership=project.memberships.get(user=bob), role="owner", by=alice)
    member_set_role(membership=own, role=Membership.MEMBER, by=bob)  # two owners: one may go
    with pytest.raises(TeamChangeRefused, match="bob is the only owner"):
        member_set_role(membership=bobs, role=Membership.MEMBER, by=bob)
    member_remove(membership=project.memberships.get(user=alice), by=alice)
    assert list(project.memberships.values_list("user__username", "role")) == [("bob", "owner")]
    assert [c[1:] for c in _changes(project)] == [
        ("role changed", "bob", "member → owner"),
        ("role changed", "alice", "owner → member"),
        ("left", "alice", ""),
    ]


def test_removing_a_member(project, alice, bob):
    member_remove(membership=project.memberships.get(user=bob), by=alice)
    assert not project.memberships.filter(user=bob).exists()
    assert _changes(project) == [("alice", "removed", "bob", "")]


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(django_user_model):
    """The project row is locked first: the second demotion sees the first and is refused."""
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    project = project_create(name="Race", owner=alice)
    project_add_member(project=project, user=bob, role=Membership.OWNER)
    barrier, outcomes = threading.Barrier(2), []

    def demote(target, by) -> None:
        barrier.wait()
        try:
            member_set_role(membership=project.memberships.get(user=target), role="member", by=by)
            outcomes.append("demoted")
        except TeamChangeRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(alice, bob)),
               threading.Thread(target=demote, args=(bob, alice))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert project.memberships.filter(role=Membership.OWNER).count() == 1


def test_renaming(project, alice):
    project_rename(project=project, name="  Support   bot ", by=alice)
    project.refresh_from_db()
    assert project.name == "Support bot"
    with pytest.raises(TeamChangeRefused, match="name"):
        project_rename(project=project, name="   ", by=alice)
    with pytest.raises(TeamChangeRefused, match="at most 200"):
        project_rename(project=project, name="x" * 201, by=alice)
    assert _changes(project) == [("alice", "renamed", "", "Voice bot → Support bot")]


@pytest.mark.django_db(transaction=True)
def test_two_owners_inviting_one_address_at_once_leave_one_live_link(django_user_model):
    alice = django_user_model.objects.create_user("alice")
    project = project_create(name="Race", owner=alice)
    barrier, outcomes = threading.Barrier(4), []

    def invite() -> None:
        barrier.wait()
        try:
            invitation_create(project=project, email="dana@example.com", role="member", by=alice)
            outcomes.append("sent")
        except TeamChangeRefused as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=invite) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "sent" in outcomes
    assert all(o == "sent" or "a moment ago" in o for o in outcomes), outcomes
    assert len(invitations_pending(project=project)) == 1
