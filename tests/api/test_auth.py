"""Keys, scopes and projects: 401, 403 and 404 on every route, in the envelope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from errorsink.projects.api_keys import api_key_authenticate, api_key_revoke
from errorsink.projects.models import ApiKey
from tests.api.conftest import ApiClient, assert_envelope

pytestmark = pytest.mark.django_db

PID = "{pid}"
# (method, path, scope it needs, body)
ROUTES = [
    ("get", f"/projects/{PID}/session-errors", "errors:read", None),
    ("get", f"/projects/{PID}/sessions/sess-1/errors", "errors:read", None),
    ("get", f"/projects/{PID}/sessions/sess-1/timeline", "errors:read", None),
    ("post", f"/projects/{PID}/events", "errors:write", {"type": "agent_error", "message": "x"}),
    ("get", f"/projects/{PID}/session-settings", "settings:read", None),
    ("patch", f"/projects/{PID}/session-settings", "settings:write", {"idle_timeout_seconds": 60}),
]
ROUTE_IDS = [f"{method} {path.split('}', 1)[1]}" for method, path, _, _ in ROUTES]


def _call(client: ApiClient, method: str, path: str, body, project_id, headers=None):
    path = path.replace(PID, str(project_id))
    if method == "get":
        return client.get(path, headers=headers)
    return getattr(client, method)(path, body if body is not None else {}, headers=headers)


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_it_answers_401_without_a_key(project, method, path, scope, body):
    response = _call(ApiClient(None), method, path, body, project.id)
    error = assert_envelope(response, 401, "UNAUTHORIZED")
    assert "Authorization: Bearer" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "bad_key",
    ["nonsense", "es_00000000_secret", "es_zzzzzzzz_x", "es_", "Basic abc"],
)
def test_it_answers_401_for_a_bad_key(project, key, bad_key):
    response = ApiClient(bad_key).get(f"/projects/{project.id}/session-errors")
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_it_answers_401_for_a_right_prefix_with_a_wrong_secret(project, key):
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = ApiClient(forged).get(f"/projects/{project.id}/session-errors")
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_it_answers_401_for_a_non_bearer_scheme(project, key):
    response = ApiClient(None).get(
        f"/projects/{project.id}/session-errors", headers={"Authorization": f"Basic {key}"}
    )
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_it_answers_401_for_a_revoked_key(project, key):
    assert ApiClient(key).get(f"/projects/{project.id}/session-errors").status_code == 200
    api_key_revoke(key=ApiKey.objects.get(prefix=key[3:11]))
    response = ApiClient(key).get(f"/projects/{project.id}/session-errors")
    error = assert_envelope(response, 401, "UNAUTHORIZED")
    assert "revoked" in error["message"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_it_answers_403_without_the_scope(project, make_key, method, path, scope, body):
    others = ",".join(s for s in ApiKey.SCOPES if s != scope)
    response = _call(ApiClient(make_key(others)), method, path, body, project.id)
    error = assert_envelope(response, 403, "FORBIDDEN")
    assert scope in error["message"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_it_lets_the_scope_through(project, make_key, make_event, method, path, scope, body):
    make_event(session_id="sess-1")
    response = _call(ApiClient(make_key(scope)), method, path, body, project.id)
    assert response.status_code in (200, 202), response.content


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
def test_it_answers_404_for_another_project(project, other_project, key, method, path, scope, body):
    response = _call(ApiClient(key), method, path, body, other_project.id)
    error = assert_envelope(response, 404, "NOT_FOUND")
    assert error["message"] == "No such project"


def test_it_answers_the_same_404_for_a_project_that_does_not_exist(api, other_project):
    missing = api.get("/projects/00000000-0000-0000-0000-000000000000/session-errors")
    foreign = api.get(f"/projects/{other_project.id}/session-errors")
    assert missing.json()["error"]["message"] == foreign.json()["error"]["message"]
    assert_envelope(missing, 404, "NOT_FOUND")
    assert_envelope(api.get("/projects/not-a-uuid/session-errors"), 404, "NOT_FOUND")


def test_it_answers_404_before_403_for_another_project(project, other_project, make_key):
    response = ApiClient(make_key("settings:read")).get(
        f"/projects/{other_project.id}/session-errors"
    )
    assert_envelope(response, 404, "NOT_FOUND")


def test_it_checks_the_scope_before_validating_the_body(project, make_key):
    response = ApiClient(make_key("settings:read")).patch(
        f"/projects/{project.id}/session-settings", {"error_message": "x" * 600}
    )
    assert_envelope(response, 403, "FORBIDDEN")


def test_it_accepts_any_valid_key_for_the_code_catalog(make_key):
    response = ApiClient(make_key("settings:read")).get("/codes")
    assert response.status_code == 200
    assert_envelope(ApiClient(None).get("/codes"), 401, "UNAUTHORIZED")


def test_it_records_last_use_at_most_once_a_minute(project, key, django_assert_num_queries):
    api_key = ApiKey.objects.get(prefix=key[3:11])
    assert api_key.last_used_at is None
    with django_assert_num_queries(2):  # the key lookup, then the first-use UPDATE
        assert api_key_authenticate(plaintext=key) is not None
    first = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # used seconds ago: no write
        api_key_authenticate(plaintext=key)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    api_key_authenticate(plaintext=key)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at > first
