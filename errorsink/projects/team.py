"""A project's team: invitations, roles, removal and leaving, renaming and deleting the project,
each change recorded (docs/teams.md).

Every change that could leave a project without an owner locks the project's row first, so two
owners demoting each other at the same moment cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from errorsink.projects.models import Invitation, Membership, Project, TeamChange

NAME_MAX = 200
CREATED = "created the project"


class TeamChangeRefused(Exception):
    """A change the rules forbid; the message says why, in words for the person who asked."""


@dataclass(frozen=True)
class InvitationMade:
    invitation: Invitation
    token: str  # the link's secret: shown once, mailed once, never stored


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _actor_name(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else "system"


def team_change_record(
    *, project: Project, actor: AbstractBaseUser | None, action: str, subject: str = "",
    detail: str = "",
) -> TeamChange:  # fmt: skip
    return TeamChange.objects.create(
        project=project, actor=actor, actor_name=_actor_name(actor), action=action,
        subject=subject[:254], detail=detail[:300],
    )  # fmt: skip


def team_changes(*, project: Project, limit: int = 50) -> QuerySet[TeamChange]:
    return TeamChange.objects.filter(project=project).order_by("-at", "-id")[:limit]


def _locked(project: Project) -> Project:
    return Project.objects.select_for_update().get(id=project.id)


def _owners_besides(project: Project, membership: Membership) -> int:
    others = Membership.objects.filter(project=project, role=Membership.OWNER)
    return others.exclude(id=membership.id).count()


# --- the project itself ----------------------------------------------------------------------


def project_name_clean(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise TeamChangeRefused("Give the project a name.")
    if len(name) > NAME_MAX:
        raise TeamChangeRefused(f"A project's name is at most {NAME_MAX} characters.")
    return name


def project_rename(*, project: Project, name: str, by: AbstractBaseUser) -> Project:
    name = project_name_clean(name)
    if name == project.name:
        return project
    old = project.name
    with transaction.atomic():
        Project.objects.filter(id=project.id).update(name=name)
        team_change_record(project=project, actor=by, action="renamed", detail=f"{old} → {name}")
    project.name = name
    return project


# --- invitations -----------------------------------------------------------------------------


def invitation_email_clean(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamChangeRefused(f"“{email[:100]}” is not an email address.") from None
    return email


def invitation_create(
    *, project: Project, email: str, role: str, by: AbstractBaseUser
) -> InvitationMade:
    """A new single-use link for `email`. Refused for an address that already belongs to a
    member; an earlier pending invitation to the same address is replaced (its link stops
    working), so there is only ever one live link per person."""
    email = invitation_email_clean(email)
    if role not in dict(Membership.ROLES):
        raise TeamChangeRefused(f"Unknown role “{role[:20]}”: choose owner or member.")
    members = Membership.objects.filter(project=project, user__email__iexact=email)
    if members.exists():
        raise TeamChangeRefused(f"{email} is already a member of {project.name}.")
    token = secrets.token_urlsafe(32)
    try:
        return _invitation_insert(project, email, role, by, token)
    except IntegrityError:  # another owner invited the same address at the same moment
        raise TeamChangeRefused(
            f"An invitation to {email} was sent a moment ago by someone else: that one works."
        ) from None


def _invitation_insert(project: Project, email: str, role: str, by, token: str) -> InvitationMade:
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(
            project=project, email__iexact=email, accepted_at=None, revoked_at=None
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            project=project, email=email, role=role, token_hash=_hash(token), invited_by=by,
            expires_at=now + timedelta(days=settings.ERRORSINK_INVITE_DAYS),
        )  # fmt: skip
        team_change_record(project=project, actor=by, action="invited", subject=email,
                           detail=f"as {role}")  # fmt: skip
    return InvitationMade(invitation, token)


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation a link names, whatever its state (the page says which), or None."""
    if not token or len(token) > 100:
        return None
    invitation = Invitation.objects.select_related("project", "invited_by")
    invitation = invitation.filter(token_hash=_hash(token), project__deleted_at=None).first()
    return invitation


def invitations_pending(*, project: Project) -> list[Invitation]:
    now = timezone.now()
    rows = Invitation.objects.filter(project=project, accepted_at=None, revoked_at=None)
    return [row for row in rows.select_related("invited_by") if row.state(now) == "pending"]


def invitation_revoke(*, invitation: Invitation, by: AbstractBaseUser) -> None:
    with transaction.atomic():
        changed = Invitation.objects.filter(
            id=invitation.id, accepted_at=None, revoked_at=None
        ).update(revoked_at=timezone.now())
        if changed:
            team_change_record(project=invitation.project, actor=by,
                               action="invitation withdrawn", subject=invitation.email)  # fmt: skip


def invitation_accept(*, invitation: Invitation, user: AbstractBaseUser) -> Membership:
    """Make `user` a member with the invitation's role and spend the link. A user who already
    belongs keeps the higher of the two roles."""
    with transaction.atomic():
        # The project first, as every team change and the deletion lock it: an invitation
        # accepted while its project is being deleted waits, then finds it gone.
        project = Project.objects.select_for_update().filter(id=invitation.project_id).first()
        if project is None or project.deleted_at is not None:
            raise TeamChangeRefused("This invitation's project has been deleted.")
        current = Invitation.objects.select_for_update().get(id=invitation.id)
        state = current.state(timezone.now())
        if state != "pending":
            raise TeamChangeRefused(_why_not_pending(state))
        membership = Membership.objects.filter(project_id=current.project_id, user=user).first()
        if membership is None:
            membership = Membership.objects.create(
                project_id=current.project_id, user=user, role=current.role
            )
        elif current.role == Membership.OWNER and membership.role != Membership.OWNER:
            membership.role = Membership.OWNER
            membership.save(update_fields=["role"])
        current.accepted_at, current.accepted_by = timezone.now(), user
        current.save(update_fields=["accepted_at", "accepted_by"])
        team_change_record(project=project, actor=user, action="joined",
                           subject=current.email, detail=f"as {membership.role}")  # fmt: skip
    return membership


def _why_not_pending(state: str) -> str:
    return {
        "accepted": "This invitation has already been used.",
        "revoked": "This invitation was withdrawn or replaced by a newer one.",
        "expired": "This invitation has expired.",
    }[state]


def invitations_for_email(email: str) -> list[Invitation]:
    """Pending invitations to this address (an SSO sign-in with a verified address joins them)."""
    if not email:
        return []
    now = timezone.now()
    rows = Invitation.objects.filter(
        email__iexact=email, accepted_at=None, revoked_at=None, expires_at__gt=now,
        project__deleted_at=None,
    ).select_related("project")  # fmt: skip
    return list(rows)


# --- members ---------------------------------------------------------------------------------


def members_of(*, project: Project) -> list[Membership]:
    rows = Membership.objects.filter(project=project).select_related("user")
    return sorted(rows, key=lambda m: (m.role != Membership.OWNER, m.user.get_username().lower()))


def member_set_role(*, membership: Membership, role: str, by: AbstractBaseUser) -> Membership:
    if role not in dict(Membership.ROLES):
        raise TeamChangeRefused(f"Unknown role “{role[:20]}”: choose owner or member.")
    with transaction.atomic():
        project = _locked(membership.project)
        current = Membership.objects.select_related("user").get(id=membership.id)
        if current.role == role:
            return current
        if role != Membership.OWNER and not _owners_besides(project, current):
            raise TeamChangeRefused(
                f"{current.user.get_username()} is the only owner of {project.name}: make "
                "someone else an owner first."
            )
        old, current.role = current.role, role
        current.save(update_fields=["role"])
        team_change_record(
            project=project, actor=by, action="role changed",
            subject=current.user.get_username(), detail=f"{old} → {role}",
        )  # fmt: skip
    return current


def member_remove(*, membership: Membership, by: AbstractBaseUser) -> None:
    """Remove a member (or, when `by` is the member, leave). Their open pages close at once
    (dashboard/access_live.py) and every page of the project answers them 404 from then on."""
    leaving = membership.user_id == by.pk
    with transaction.atomic():
        project = _locked(membership.project)
        current = Membership.objects.select_related("user").filter(id=membership.id).first()
        if current is None:
            return
        if current.role == Membership.OWNER and not _owners_besides(project, current):
            who = "You are" if leaving else f"{current.user.get_username()} is"
            raise TeamChangeRefused(
                f"{who} the only owner of {project.name}: make someone else an owner first"
                + (", or delete the project." if leaving else ".")
            )
        current.delete()
        team_change_record(project=project, actor=by, action="left" if leaving else "removed",
                           subject=current.user.get_username())  # fmt: skip


def membership_in_project(*, project: Project, membership_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("user", "project")
        .filter(project=project, id=membership_id)
        .first()
    )
