"""GET /api/v1/projects/{id}/quality: figures, access and validation."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from errorsink.api.quality_schemas import QualityOut
from errorsink.sessions.models import Event
from tests.api.conftest import ApiClient
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(make_event):
    now = timezone.now() - timedelta(minutes=5)
    for session_id, build in (("s1", "b1"), ("s2", "b2"), ("s3", "b2")):
        make_event(session_id=session_id, build_id=build, kind=Event.INFO, code="CALL_STARTED",
                   occurred_at=now)  # fmt: skip
    make_event(session_id="s2", build_id="b2", kind=Event.WARNING, code="31002", occurred_at=now,
               details={"metrics": {"jitter_ms": 40, "mos": 3.5}})  # fmt: skip
    for session_id, cause, sip_code in (("s2", "USER_BUSY", 486), ("s3", "PURGE", None)):
        make_event(session_id=session_id, build_id="b2", kind=Event.TERMINATION, code=cause,
                   occurred_at=now,
                   details={"termination": {"cause": cause, "sip_code": sip_code}})  # fmt: skip
    make_event(session_id="s1", build_id="b1", code="45002", occurred_at=now)
    roll_up()


def test_it_reports_the_window_for_the_owner_key(api, project, calls):
    response = api.get(f"/projects/{project.id}/quality?window=1h")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["window"]["bucket"] == "minute"
    assert body["sessions"] == {"active": 3, "degraded": 1, "degraded_share": 1 / 3}
    [warning] = body["warnings"]
    assert (warning["code"], warning["name"], warning["count"], warning["sessions"]) == (
        "31002", "HIGH_JITTER", 1, 1,
    )  # fmt: skip
    assert warning["metrics"]["jitter_ms"] == {"count": 1, "avg": 40.0, "p95": 40.0}
    assert len(warning["series"]) == 1 and warning["series"][0]["count"] == 1
    assert body["terminations"] == [
        {"cause": "PURGE", "sip_code": None, "count": 1, "sessions": 1, "expected": False},
        {"cause": "USER_BUSY", "sip_code": 486, "count": 1, "sessions": 1, "expected": True},
    ]
    assert body["errors"] == [{"code": "45002", "name": "WEBSOCKET_ERROR", "count": 1,
                               "sessions": 1}]  # fmt: skip
    assert [(b["build_id"], b["sessions"], b["errors"]) for b in body["builds"]] == [
        ("b2", 2, 0), ("b1", 1, 1),
    ]  # fmt: skip


def test_it_defaults_to_24h_and_filters_by_build(api, project, calls):
    body = api.get(f"/projects/{project.id}/quality?build_id=b1").json()
    assert body["window"]["name"] == "24h" and body["window"]["bucket"] == "hour"
    assert body["build_id"] == "b1"
    assert body["sessions"]["active"] == 1 and body["warnings"] == []
    assert [b["build_id"] for b in body["builds"]] == ["b1"]


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_custom_range_counts_only_its_events_in_whole_buckets(api, project, calls, make_event):
    earlier = timezone.now() - timedelta(days=3)
    make_event(session_id="old", build_id="b1", code="45002", occurred_at=earlier)
    roll_up()
    since, until = earlier - timedelta(hours=2, minutes=30), earlier + timedelta(hours=1)
    response = api.get(f"/projects/{project.id}/quality?"
                       + urlencode({"since": _iso(since), "until": _iso(until)}))  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    window = body["window"]
    assert window["name"] == "custom" and window["bucket"] == "hour"
    start = since.replace(minute=0, second=0, microsecond=0)
    assert window["start"] == _iso(start)
    assert body["sessions"]["active"] == 1 and [e["code"] for e in body["errors"]] == ["45002"]
    # Within the last three hours the buckets are minutes, and the range ends with the current.
    recent = api.get(f"/projects/{project.id}/quality?" + urlencode({
        "since": _iso(timezone.now() - timedelta(minutes=30)),
        "until": _iso(timezone.now() + timedelta(days=1))})).json()  # fmt: skip
    assert recent["window"]["bucket"] == "minute" and recent["sessions"]["active"] == 3


def test_it_refuses_a_key_without_errors_read(make_key, project):
    response = ApiClient(make_key("settings:read")).get(f"/projects/{project.id}/quality")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_it_answers_404_for_another_project(api, other_project):
    response = api.get(f"/projects/{other_project.id}/quality")
    assert response.status_code == 404


def test_it_needs_a_key(project):
    assert ApiClient(None).get(f"/projects/{project.id}/quality").status_code == 401


@pytest.mark.parametrize(
    "query, field",
    [("window=2h", "window"), ("window=", "window"), ("build_id=" + "x" * 201, "build_id"),
     ("build_id=", "build_id"), ("build_id=%20b1", "build_id"),
     ("since=2026-12-01T00:00:00Z", "until"), ("window=custom&until=2026-12-01T00:00:00Z", "since"),
     ("since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z", "until"),
     ("since=2026-12-01T00:00:00&until=2026-12-02T00:00:00Z", "since"),
     ("since=2024-01-01T00:00:00Z&until=2026-12-01T00:00:00Z", "until"),
     ("since=yesterday&until=2026-12-01T00:00:00Z", "since"),
     ("since=9999-12-31T23:00:00Z&until=9999-12-31T23:30:00Z", "since"),
     ("since=0001-01-01T00:00:00Z&until=0001-01-02T00:00:00Z", "since")],
)  # fmt: skip
def test_it_answers_422_with_details_for_what_is_not_allowed(api, project, query, field):
    response = api.get(f"/projects/{project.id}/quality?{query}")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]


def test_every_parameter_is_in_the_openapi_document(api):
    document = api.client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/projects/{project_id}/quality"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"project_id", "window", "build_id", "since", "until"}
    assert parameters["window"]["schema"]["enum"] == ["1h", "24h", "7d", "30d", "custom"]
    assert {"403", "404", "422"} <= set(operation["responses"])


@pytest.mark.parametrize("query", ["window=1h", "window=24h", "window=7d", "window=30d",
                                   "window=30d&build_id=b2"])  # fmt: skip
def test_every_answer_has_the_documented_shape(api, project, calls, query):
    """The answer is written without the response schema's validation: this holds it there."""
    body = api.get(f"/projects/{project.id}/quality?{query}").json()
    assert QualityOut.model_validate(body).model_dump(mode="json").keys() == body.keys()
    assert body["window"]["start"].endswith("Z") and body["sessions"]["active"] >= 1
