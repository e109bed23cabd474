"""The envelope and X-Request-Id on every kind of failure, 429, 503, docs and OpenAPI."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from errorsink.api.errors import handler500
from errorsink.api.request_id import RequestIdFormatter
from errorsink.ingest.queue import redis_client
from tests.api.conftest import ApiClient, assert_envelope

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_echoes_the_callers_request_id(api, project):
    response = api.get(f"/projects/{project.id}/session-errors", headers={"X-Request-Id": "ci-42"})
    assert response["X-Request-Id"] == "ci-42"
    error = ApiClient(None).get(f"/projects/{project.id}/session-errors",
                                headers={"X-Request-Id": "ci-43"})  # fmt: skip
    assert assert_envelope(error, 401, "UNAUTHORIZED")["requestId"] == "ci-43"


def test_it_makes_a_request_id_when_none_or_a_dangerous_one_is_sent(api, project):
    plain = api.get(f"/projects/{project.id}/session-errors")
    assert re.fullmatch(r"req_[0-9a-f]{24}", plain["X-Request-Id"])
    forged = api.get(f"/projects/{project.id}/session-errors",
                     headers={"X-Request-Id": "x" * 300})  # fmt: skip
    assert forged["X-Request-Id"].startswith("req_")
    other = api.get(f"/projects/{project.id}/session-errors")
    assert other["X-Request-Id"] != plain["X-Request-Id"]


def test_it_puts_a_request_id_on_dashboard_responses_too():
    response = Client(HTTP_HOST="localhost").get("/login/")
    assert response.status_code == 200
    assert response["X-Request-Id"].startswith("req_")


def test_it_answers_djangos_own_404_under_api_in_the_envelope():
    response = Client(HTTP_HOST="localhost").get("/api/v1/no/such/route",
                                                 headers={"X-Request-Id": "r-404"})  # fmt: skip
    error = assert_envelope(response, 404, "NOT_FOUND")
    assert error["requestId"] == "r-404"
    assert_envelope(Client(HTTP_HOST="localhost").get("/api/elsewhere"), 404, "NOT_FOUND")


def test_it_keeps_html_404_pages_for_the_dashboard():
    response = Client(HTTP_HOST="localhost").get("/no/such/page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_it_answers_405_in_the_envelope(api, project):
    response = api.client.delete(f"/api/v1/projects/{project.id}/session-errors")
    error = assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in error["message"] and response["Allow"] == "GET"


def test_it_answers_a_bad_host_in_the_envelope():
    response = Client(HTTP_HOST="evil.example").get("/api/v1/codes")
    assert_envelope(response, 400, "BAD_REQUEST")


def test_it_answers_500_in_the_envelope_and_logs_it(api, monkeypatch, caplog):
    def boom():
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr("errorsink.api.routes.all_codes", boom)
    with caplog.at_level(logging.ERROR, logger="errorsink.api"):
        response = api.get("/codes", headers={"X-Request-Id": "r-500"})
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "exploded" not in error["message"]  # no internals leak to the caller
    [record] = [r for r in caplog.records if r.name == "errorsink.api"]
    assert "catalog exploded" in record.exc_text or "catalog exploded" in str(record.exc_info)


def test_it_answers_djangos_500_handler_in_the_envelope_under_api():
    request = RequestFactory().get("/api/v1/codes")
    request.request_id = "r-500b"
    response = handler500(request)
    assert response.status_code == 500
    assert json.loads(response.content)["error"] == {
        "code": "INTERNAL_ERROR",
        "message": "An unexpected server failure occurred",
        "requestId": "r-500b",
    }
    assert "text/html" in handler500(RequestFactory().get("/projects/"))["Content-Type"]


def test_it_answers_429_with_retry_after_past_the_limit(project, make_key, settings):
    settings.ERRORSINK_API_RATE_LIMIT = 3
    limited, other = ApiClient(make_key()), ApiClient(make_key())
    statuses = [limited.get(f"/projects/{project.id}/session-errors").status_code
                for _ in range(4)]  # fmt: skip
    assert statuses == [200, 200, 200, 429]
    response = limited.get(f"/projects/{project.id}/session-errors")
    assert_envelope(response, 429, "RATE_LIMITED")
    assert 1 <= int(response["Retry-After"]) <= settings.ERRORSINK_API_RATE_WINDOW
    # Per key: another key of the same project is not held back.
    assert other.get(f"/projects/{project.id}/session-errors").status_code == 200


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    redis_client.cache_clear()
    yield
    redis_client.cache_clear()


def test_it_answers_503_with_retry_after_when_redis_is_down(project, key, redis_down):
    response = ApiClient(key).get(f"/projects/{project.id}/session-errors")
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response["Retry-After"]) > 0


def test_it_answers_503_when_redis_goes_down_while_enqueueing(project, key, settings):
    settings.ERRORSINK_API_RATE_LIMIT = 0  # limiter off: the failure comes from LPUSH
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    redis_client.cache_clear()
    try:
        response = ApiClient(key).post(f"/projects/{project.id}/events",
                                       {"type": "agent_error", "message": "x"})  # fmt: skip
    finally:
        redis_client.cache_clear()
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"]


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_with_retry_after_when_postgresql_is_down(project, key, monkeypatch):
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "PORT", str(_closed_port()))
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    try:
        response = ApiClient(key).get(f"/projects/{project.id}/session-errors")
    finally:
        connection.close()
        monkeypatch.undo()
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response["Retry-After"]) > 0


def test_it_logs_one_line_per_api_request_with_its_id(api, project, caplog):
    with caplog.at_level(logging.INFO, logger="errorsink.api.access"):
        response = api.get(f"/projects/{project.id}/session-errors",
                           headers={"X-Request-Id": "trace-me"})  # fmt: skip
    [record] = [r for r in caplog.records if r.name == "errorsink.api.access"]
    line = RequestIdFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert f"/api/v1/projects/{project.id}/session-errors 200" in line
    assert f"key={api.key[3:11]}" in line
    assert line.endswith(f"request_id={response['X-Request-Id']}") and "trace-me" in line


def test_it_serves_the_openapi_document_with_every_route():
    response = Client(HTTP_HOST="localhost").get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert set(document["paths"]) == {
        "/api/v1/projects/{project_id}/session-errors",
        "/api/v1/projects/{project_id}/sessions",
        "/api/v1/projects/{project_id}/sessions/{session_id}/errors",
        "/api/v1/projects/{project_id}/sessions/{session_id}/timeline",
        "/api/v1/projects/{project_id}/sessions/{session_id}/turns",
        "/api/v1/projects/{project_id}/latency",
        "/api/v1/projects/{project_id}/events",
        "/api/v1/projects/{project_id}/events/batch",
        "/api/v1/projects/{project_id}/session-settings",
        "/api/v1/projects/{project_id}/quality",
        "/api/v1/projects/{project_id}/issues",
        "/api/v1/projects/{project_id}/issues/{issue_id}",
        "/api/v1/projects/{project_id}/issues/{issue_id}/events",
        "/api/v1/projects/{project_id}/alert-rules",
        "/api/v1/projects/{project_id}/alert-rules/{rule_id}",
        "/api/v1/codes",
    }
    # docs/issues.md: every query parameter of the lists is published.
    listed = {p["name"] for p in document["paths"]["/api/v1/projects/{project_id}/issues"]
              ["get"]["parameters"]}  # fmt: skip
    assert {"status", "q", "code", "build_id", "since", "until", "sort", "limit",
            "cursor"} <= listed  # fmt: skip
    errors = document["paths"]["/api/v1/projects/{project_id}/session-errors"]["get"]
    assert {"limit", "cursor", "code", "q", "build_id", "since", "until"} <= {
        p["name"] for p in errors["parameters"]}  # fmt: skip
    sessions = document["paths"]["/api/v1/projects/{project_id}/sessions"]["get"]
    assert {"q", "build_id", "end_cause", "degraded", "has_errors", "limit", "cursor"} <= {
        p["name"] for p in sessions["parameters"]}  # fmt: skip
    patch = document["paths"]["/api/v1/projects/{project_id}/session-settings"]["patch"]
    assert {"401", "403", "404", "422", "429", "503"} <= set(patch["responses"])
    assert document["components"]["securitySchemes"]


def test_it_serves_the_docs_page_from_local_assets_without_inline_script():
    client = Client(HTTP_HOST="localhost")
    page = client.get("/api/v1/docs").content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts)
    assert "cdn" not in page.lower()
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert client.get(asset).status_code == 200, asset


def test_it_answers_a_cors_preflight_so_browsers_can_post_events(project):
    response = Client(HTTP_HOST="localhost").options(
        f"/api/v1/projects/{project.id}/events",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )  # fmt: skip
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_it_lets_browsers_read_the_request_id_of_any_api_response(api, project):
    for response in (api.get(f"/projects/{project.id}/session-errors"), api.get("/nope")):
        assert response["Access-Control-Allow-Origin"] == "*"
        assert "X-Request-Id" in response["Access-Control-Expose-Headers"]
    assert (
        not Client(HTTP_HOST="localhost").get("/login/").has_header("Access-Control-Allow-Origin")
    )


def test_it_keeps_the_envelope_for_unknown_routes_in_debug_mode(settings):
    settings.DEBUG = True
    response = Client(HTTP_HOST="localhost").get("/api/v1/no/such/route")
    assert_envelope(response, 404, "NOT_FOUND")
