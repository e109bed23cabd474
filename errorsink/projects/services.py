"""Services and selectors for projects and their membership."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from errorsink.projects.models import Membership, Project, SessionSettings
from errorsink.projects.team import CREATED, team_change_record
from errorsink.sentry.keys import sentry_key_for


@transaction.atomic
def project_create(*, name: str, owner: AbstractBaseUser | None = None) -> Project:
    """A project comes with its session settings at their defaults and its owner as a member."""
    project = Project.objects.create(name=name)
    SessionSettings.objects.create(project=project)
    sentry_key_for(project)
    if owner is not None:
        Membership.objects.create(project=project, user=owner, role=Membership.OWNER)
    team_change_record(project=project, actor=owner, action=CREATED)
    return project


def project_add_member(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def projects_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user, deleted_at=None).order_by("name")


def project_for_user(*, user: AbstractBaseUser, project_id: object) -> Project | None:
    """The project if the user is a member, else None (callers answer 404, never 403)."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return Project.objects.filter(memberships__user=user, deleted_at=None).get(id=project_id)
    except (Project.DoesNotExist, ValidationError, ValueError):
        return None


def membership_for_user(*, user: AbstractBaseUser, project_id: object) -> Membership | None:
    """The user's membership with its project in one query, or None (callers answer 404)."""
    if not getattr(user, "is_authenticated", False):
        return None
    memberships = Membership.objects.select_related("project").filter(
        user=user, project__deleted_at=None
    )
    try:
        return memberships.filter(project_id=project_id).first()
    except (ValidationError, ValueError):
        return None
