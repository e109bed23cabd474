"""Who may open a project's pages (its members, and nobody else) and who may change it (its
owners)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from errorsink.projects.models import Membership
from errorsink.projects.services import membership_for_user


def get_membership_or_404(request: HttpRequest, project_id: object) -> Membership:
    """The caller's membership with its project, in one query. Anyone else gets 404, never 403,
    so an outsider cannot even learn that the project exists."""
    membership = membership_for_user(user=request.user, project_id=project_id)
    if membership is None:
        raise Http404("No such project")
    return membership


def require_owner(membership: Membership, action: str) -> Membership:
    """The membership, if it is an owner's; a member gets 403 naming what only owners may do."""
    if membership.role != Membership.OWNER:
        raise PermissionDenied(f"Only the project's owners can {action}")
    return membership


def get_owner_membership(request: HttpRequest, project_id: object, action: str) -> Membership:
    """An owner's membership: 404 for anyone outside the project, 403 for its members."""
    return require_owner(get_membership_or_404(request, project_id), action)
