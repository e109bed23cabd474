"""GET /projects/{id}/sessions (docs/issues.md), with sessions stored as the worker stores
them and the degraded flag set by the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from errorsink.sessions.models import Session
from tests.api.conftest import ApiClient, assert_envelope
from tests.ingest_helpers import error_item, items_store
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db

T0 = datetime.now(UTC) - timedelta(hours=2)


def _warning(project, session_id: str, code: str, minutes: int) -> dict:
    return {"type": "session_warning", "project_id": str(project.id), "session_id": session_id,
            "code": code, "event_id": f"w-{session_id}-{code}",
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat()}  # fmt: skip


def _end(project, session_id: str, cause: str, minutes: int) -> dict:
    return {"type": "session_end", "project_id": str(project.id), "session_id": session_id,
            "cause": cause, "event_id": f"end-{session_id}",
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat()}  # fmt: skip


@pytest.fixture
def sessions(project):
    """call-a (oldest) … call-e (newest): errors, a degraded warning, a diagnostic, ends."""
    items = [
        error_item(project.id, session_id="call-a", build_id="v1",
                   occurred_at=T0.isoformat()),
        _warning(project, "call-b", "31002", 10),  # high jitter: degraded
        _end(project, "call-b", "NORMAL_CLEARING", 11),
        _warning(project, "call-c", "32003", 20),  # a recording diagnostic: not degraded
        _end(project, "call-c", "USER_BUSY", 21),
        error_item(project.id, session_id="call-d", build_id="v2",
                   occurred_at=(T0 + timedelta(minutes=30)).isoformat()),
        _warning(project, "other-e", "33001", 40),
    ]  # fmt: skip
    items_store(items)
    roll_up()
    return items


def _ids(api, project, query: str = "") -> list[str]:
    response = api.get(f"/projects/{project.id}/sessions{query}")
    assert response.status_code == 200, response.content
    return [session["session_id"] for session in response.json()["sessions"]]


def test_the_rollups_mark_degraded_sessions(sessions):
    degraded = set(Session.objects.filter(degraded=True).values_list("session_id", flat=True))
    assert degraded == {"call-b", "other-e"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["other-e", "call-d", "call-c", "call-b", "call-a"]),
        ("?q=call-", ["call-d", "call-c", "call-b", "call-a"]),
        ("?q=CALL-", []),
        ("?build_id=v1", ["call-a"]),
        ("?end_cause=USER_BUSY", ["call-c"]),
        ("?end_cause=none", ["other-e", "call-d", "call-a"]),
        ("?degraded=true", ["other-e", "call-b"]),
        ("?degraded=false", ["call-d", "call-c", "call-a"]),
        ("?has_errors=true", ["call-d", "call-a"]),
        ("?has_errors=false&degraded=false", ["call-c"]),
    ],
)
def test_it_filters_sessions(api, project, sessions, query, expected):
    assert _ids(api, project, query) == expected


def test_it_describes_each_session(api, project, sessions):
    body = api.get(f"/projects/{project.id}/sessions?q=call-b").json()
    [session] = body["sessions"]
    assert session["end_cause"] == "NORMAL_CLEARING" and session["degraded"] is True
    assert session["quality_tags"] == ["high_jitter"]
    assert (session["event_count"], session["warning_count"], session["error_count"]) == (2, 1, 0)


def test_it_pages_by_start_without_gap_or_repeat_as_sessions_arrive(api, project, sessions):
    first = api.get(f"/projects/{project.id}/sessions?limit=2").json()
    assert [s["session_id"] for s in first["sessions"]] == ["other-e", "call-d"]
    items_store([error_item(project.id, session_id="call-new")])  # starts now: in front
    items_store([error_item(project.id, session_id="call-d")])  # active again: stays put
    rest = api.get(f"/projects/{project.id}/sessions?limit=2&cursor={first['next']}").json()
    assert [s["session_id"] for s in rest["sessions"]] == ["call-c", "call-b"]
    last = api.get(f"/projects/{project.id}/sessions?limit=2&cursor={rest['next']}").json()
    assert [s["session_id"] for s in last["sessions"]] == ["call-a"] and last["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("?degraded=maybe", "degraded"), ("?has_errors=2", "has_errors"), ("?limit=0", "limit"),
     ("?cursor=xyz", "cursor")],
)  # fmt: skip
def test_a_bad_filter_is_a_422_naming_it(api, project, query, field):
    error = assert_envelope(api.get(f"/projects/{project.id}/sessions{query}"), 422,
                            "VALIDATION_ERROR")  # fmt: skip
    assert field in error["details"]


def test_scopes_and_other_projects(make_key, project, other_project, sessions):
    assert_envelope(ApiClient(make_key("settings:read")).get(f"/projects/{project.id}/sessions"),
                    403, "FORBIDDEN")  # fmt: skip
    theirs = ApiClient(make_key(on=other_project))
    assert_envelope(theirs.get(f"/projects/{project.id}/sessions"), 404, "NOT_FOUND")
    assert theirs.get(f"/projects/{other_project.id}/sessions").json()["sessions"] == []


def test_a_filter_holding_nul_is_a_400_not_a_server_error(api, project):
    for path in ("sessions?q=a%00b", "session-errors?q=a%00b", "issues?build_id=%00"):
        response = api.get(f"/projects/{project.id}/{path}")
        assert response.status_code == 400, (path, response.content)
        assert "NUL" in response.json()["error"]["message"]
