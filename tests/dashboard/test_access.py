"""The one access check of every project page: members get their membership, others a 404."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.test import RequestFactory

from dashboard.access import get_membership_or_404
from errorsink.projects.models import Membership

pytestmark = pytest.mark.django_db


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_it_gives_members_their_role_and_project(alice, bob, project):
    for user, role in [(alice, Membership.OWNER), (bob, Membership.MEMBER)]:
        membership = get_membership_or_404(_request(user), project.id)
        assert (membership.project, membership.role) == (project, role)


@pytest.mark.parametrize("project_id", ["mine", "00000000-0000-0000-0000-000000000000", "nope"])
def test_it_404s_outsiders_anonymous_users_and_unknown_projects(
    alice, charlie, project, project_id
):
    project_id = project.id if project_id == "mine" else project_id
    for user in [charlie, AnonymousUser()]:
        with pytest.raises(Http404):
            get_membership_or_404(_request(user), project_id)
    if project_id != project.id:
        with pytest.raises(Http404):
            get_membership_or_404(_request(alice), project_id)


def test_it_reads_the_membership_and_project_in_one_query(
    alice, project, django_assert_num_queries
):
    with django_assert_num_queries(1):
        assert get_membership_or_404(_request(alice), project.id).project.name == "Voice bot"
