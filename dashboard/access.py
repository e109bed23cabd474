"""Who may open a project's pages: its members, and nobody else."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from errorsink.models import Membership
from errorsink.projects import membership_for_user


def get_membership_or_404(request: HttpRequest, project_id: object) -> Membership:
    """The caller's membership with its project, in one query. Anyone else gets 404, never 403,
    so an outsider cannot even learn that the project exists."""
    membership = membership_for_user(user=request.user, project_id=project_id)
    if membership is None:
        raise Http404("No such project")
    return membership
