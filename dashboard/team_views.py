"""A project's team in the browser (docs/teams.md): creating projects, the members page
(invitations, roles, removal, leaving, renaming and deleting the project) and its history."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import get_membership_or_404, get_owner_membership
from dashboard.shown_once import shown_once_clear, shown_once_get, shown_once_set
from errorsink.projects.models import Invitation, Membership, Project
from errorsink.projects.purge import project_delete
from errorsink.projects.services import project_create
from errorsink.projects.team import (
    InvitationMade,
    TeamChangeRefused,
    invitation_create,
    invitation_revoke,
    invitations_pending,
    member_remove,
    member_set_role,
    members_of,
    membership_in_project,
    project_name_clean,
    project_rename,
    team_changes,
)
from errorsink.tasks import projects_purge

logger = logging.getLogger("dashboard.team")

NEW_INVITE = "new_invitation"


@login_required
@require_POST
def project_new(request: HttpRequest) -> HttpResponse:
    """Any signed-in user may start a project, and owns it."""
    try:
        name = project_name_clean(request.POST.get("name", ""))
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
        return redirect("projects")
    project = project_create(name=name, owner=request.user)
    messages.success(request, f"Project “{project.name}” created: you are its owner.")
    return redirect("project", project.id)


def _members_context(request: HttpRequest, membership: Membership, **extra) -> dict:
    project, is_owner = membership.project, membership.role == Membership.OWNER
    team = members_of(project=project)
    return {
        "project": project,
        "me": membership,
        "is_owner": is_owner,
        "members": team,
        "owners": sum(member.role == Membership.OWNER for member in team),
        "invitations": invitations_pending(project=project) if is_owner else [],
        "changes": team_changes(project=project),
        "roles": Membership.ROLES,
        "invite_days": settings.ERRORSINK_INVITE_DAYS,
        **extra,
    }


@never_cache  # the page that shows a new invitation's link must not be kept by any cache
@login_required
@require_GET
def members(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    extra = _new_invitation_once(request, membership.project)
    response = render(request, "dashboard/members.html", _members_context(request, membership,
                                                                          **extra))  # fmt: skip
    return shown_once_clear(response, NEW_INVITE, path=request.path)


def _new_invitation_once(request: HttpRequest, project: Project) -> dict:
    value = shown_once_get(request, NEW_INVITE)
    if not value:
        return {}
    invitation_id, _, token = value.partition(":")
    invitation = Invitation.objects.filter(id=invitation_id, project=project).first()
    if invitation is None:
        return {}
    link = request.build_absolute_uri(reverse("invitation", args=[token]))
    return {"new_invitation": invitation, "new_link": link}


@login_required
@require_POST
def member_invite(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "invite people")
    email, role = request.POST.get("email", ""), request.POST.get("role", Membership.MEMBER)
    try:
        made = invitation_create(project=membership.project, email=email, role=role,
                                 by=request.user)  # fmt: skip
    except TeamChangeRefused as exc:
        context = _members_context(request, membership, invite_error=str(exc),
                                   invite_email=email, invite_role=role)  # fmt: skip
        return render(request, "dashboard/members.html", context, status=422)
    link = request.build_absolute_uri(reverse("invitation", args=[made.token]))
    _invitation_mail(request, made, link)
    members_url = reverse("members", args=[membership.project.id])
    response = redirect(members_url)
    return shown_once_set(response, request, NEW_INVITE, f"{made.invitation.id}:{made.token}",
                          path=members_url)  # fmt: skip


def _invitation_mail(request: HttpRequest, made: InvitationMade, link: str) -> None:
    invitation = made.invitation
    context = {
        "invitation": invitation, "project": invitation.project, "link": link,
        "inviter": request.user.get_username(), "days": settings.ERRORSINK_INVITE_DAYS,
    }  # fmt: skip
    body = render_to_string("dashboard/email/invitation.txt", context)
    subject = f"{context['inviter']} invites you to {invitation.project.name} on errorsink"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])
    except Exception as exc:  # the link is on the page: the owner can send it another way
        logger.warning("could not mail the invitation to %s: %s", invitation.email, exc)
        messages.warning(request, f"The email to {invitation.email} could not be sent ({exc}): "
                                  "copy the link below and send it yourself.")  # fmt: skip
        return
    messages.success(request, f"Invitation sent to {invitation.email}.")


@login_required
@require_POST
def invitation_withdraw(request: HttpRequest, project_id, invitation_id: int) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "withdraw invitations")
    invitation = Invitation.objects.filter(id=invitation_id, project=membership.project).first()
    if invitation is None:
        raise Http404("No such invitation")
    invitation_revoke(invitation=invitation, by=request.user)
    messages.success(request, f"The invitation to {invitation.email} no longer works.")
    return redirect("members", membership.project.id)


def _owner_and_member(request: HttpRequest, project_id, member_id: int, action: str):
    """The caller's owner membership and the member acted on; 404 for another project's."""
    membership = get_owner_membership(request, project_id, action)
    target = membership_in_project(project=membership.project, membership_id=member_id)
    if target is None:
        raise Http404("No such member")
    return membership, target


@login_required
@require_POST
def member_role(request: HttpRequest, project_id, member_id: int) -> HttpResponse:
    membership, target = _owner_and_member(request, project_id, member_id, "change roles")
    try:
        changed = member_set_role(membership=target, role=request.POST.get("role", ""),
                                  by=request.user)  # fmt: skip
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        article = "an" if changed.role == Membership.OWNER else "a"
        messages.success(request, f"{changed.user.get_username()} is now {article} {changed.role}.")
    return redirect("members", membership.project.id)


@login_required
@require_POST
def member_remove_view(request: HttpRequest, project_id, member_id: int) -> HttpResponse:
    membership, target = _owner_and_member(request, project_id, member_id, "remove members")
    try:
        member_remove(membership=target, by=request.user)
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
        return redirect("members", membership.project.id)
    if target.user_id == request.user.pk:
        messages.success(request, f"You left {membership.project.name}.")
        return redirect("projects")
    messages.success(request, f"{target.user.get_username()} was removed from the project.")
    return redirect("members", membership.project.id)


@login_required
@require_POST
def project_leave(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    try:
        member_remove(membership=membership, by=request.user)
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
        return redirect("members", membership.project.id)
    messages.success(request, f"You left {membership.project.name}.")
    return redirect("projects")


@login_required
@require_POST
def project_rename_view(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "rename it")
    try:
        project = project_rename(project=membership.project, name=request.POST.get("name", ""),
                                 by=request.user)  # fmt: skip
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The project is now called “{project.name}”.")
    return redirect("members", membership.project.id)


@login_required
@require_POST
def project_delete_view(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_owner_membership(request, project_id, "delete it")
    project = membership.project
    try:
        project_delete(project=project, confirm_name=request.POST.get("confirm", ""),
                       by=request.user)  # fmt: skip
    except TeamChangeRefused as exc:
        messages.error(request, str(exc))
        return redirect("members", project.id)
    _purge_soon(project.id)
    messages.success(request, f"Project “{project.name}” deleted. Its events are being removed "
                              "in the background.")  # fmt: skip
    return redirect("projects")


def _purge_soon(project_id) -> None:
    try:
        projects_purge.delay()  # project_delete has committed: the task sees the deletion
    except Exception:  # beat runs the purge anyway within minutes
        logger.warning("could not queue the purge of project %s", project_id, exc_info=True)
