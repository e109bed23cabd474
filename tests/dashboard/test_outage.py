"""While PostgreSQL or Redis is down a dashboard page says so, with a 503 and Retry-After, and
retries by itself: never a bare 500 (issue 14)."""

from __future__ import annotations

import pytest
import redis
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        (OperationalError("connection refused"), "PostgreSQL"),
        (redis.ConnectionError("Connection refused"), "Redis"),
    ],
)
def test_a_page_says_which_dependency_is_down(alice, project, monkeypatch, failure, named):
    client = Client(raise_request_exception=False)
    client.force_login(alice)

    def unreachable(**kwargs):
        raise failure

    monkeypatch.setattr("dashboard.access.membership_for_user", unreachable)
    response = client.get(reverse("project", args=[project.id]))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    page = response.content.decode()
    assert f"errorsink cannot reach {named}" in page
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "alice" not in page  # rendered without the session: it needs no database


def test_any_other_failure_is_still_a_500(alice, project, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(alice)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("dashboard.access.membership_for_user", broken)
    assert client.get(reverse("project", args=[project.id])).status_code == 500
