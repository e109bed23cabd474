"""The issues routes and the filtered, paged session-errors (docs/issues.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from errorsink.issues.models import Issue
from errorsink.paging import cursor_encode
from tests.api.conftest import assert_envelope
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_issues(project):
    now = datetime.now(UTC)
    items_store(
        [
            error_item(
                project.id, code="A_FAILED", message=f"a {n}", session_id=f"s{n}", build_id="v1"
            )
            for n in range(5)
        ],
        received_at=now - timedelta(hours=3),
    )
    items_store(
        [
            error_item(project.id, code="B_FAILED", message=f"b '{n}'", build_id="v2")
            for n in range(3)
        ],
        received_at=now - timedelta(hours=2),
    )
    items_store([error_item(project.id, code="AB_SLOW", message="slow tool lookup_order",
                            build_id="v2")], received_at=now - timedelta(hours=1))  # fmt: skip
    return {issue.code: issue for issue in Issue.objects.filter(project=project)}


def _list(api, project, query: str = "") -> dict:
    response = api.get(f"/projects/{project.id}/issues{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_it_lists_unresolved_issues_newest_activity_first(api, project, three_issues):
    body = _list(api, project)
    assert [i["code"] for i in body["issues"]] == ["AB_SLOW", "B_FAILED", "A_FAILED"]
    a_failed = body["issues"][2]
    assert (a_failed["count"], a_failed["sessions"], a_failed["builds"]) == (5, 5, ["v1"])
    assert a_failed["fingerprint"] == ["code: A_FAILED", "message: a <num>"]
    assert a_failed["status"] == "unresolved" and a_failed["regressed"] is False
    assert body["next"] is None


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        ("?sort=count", ["A_FAILED", "B_FAILED", "AB_SLOW"]),
        ("?sort=sessions", ["A_FAILED", "AB_SLOW", "B_FAILED"]),
        ("?code=a", ["AB_SLOW", "A_FAILED"]),
        ("?q=LOOKUP", ["AB_SLOW"]),
        ("?q=slow+tool", ["AB_SLOW"]),
        ("?build_id=v2", ["AB_SLOW", "B_FAILED"]),
        ("?since=90m", ["AB_SLOW"]),
        ("?status=resolved", []),
    ],
)
def test_it_filters_and_sorts(api, project, three_issues, query, codes):
    assert [i["code"] for i in _list(api, project, query)["issues"]] == codes


def test_it_pages_by_keyset_without_gap_or_repeat_while_issues_move(api, project, three_issues):
    first = _list(api, project, "?limit=2")
    assert [i["code"] for i in first["issues"]] == ["AB_SLOW", "B_FAILED"]
    # New activity on an issue already shown moves it to the front: the next page neither
    # repeats it nor skips A_FAILED.
    items_store([error_item(project.id, code="B_FAILED", message="b '9'")])
    second = _list(api, project, f"?limit=2&cursor={first['next']}")
    assert [i["code"] for i in second["issues"]] == ["A_FAILED"]
    assert second["next"] is None


def test_resolving_then_a_new_event_reopens_it_as_regressed(api, project, three_issues):
    issue = three_issues["A_FAILED"]
    response = api.patch(f"/projects/{project.id}/issues/{issue.id}", {"status": "resolved"})
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert [i["code"] for i in _list(api, project, "?status=resolved")["issues"]] == ["A_FAILED"]
    items_store([error_item(project.id, code="A_FAILED", message="a 77")])
    reopened = api.get(f"/projects/{project.id}/issues/{issue.id}").json()
    assert (reopened["status"], reopened["regressed"], reopened["count"]) == (
        "unresolved", True, 6)  # fmt: skip
    # Someone looks again: setting a status clears the mark.
    again = api.patch(f"/projects/{project.id}/issues/{issue.id}", {"status": "unresolved"})
    assert again.json()["regressed"] is False


def test_it_lists_an_issues_events_newest_first_in_pages(api, project, three_issues):
    issue = three_issues["A_FAILED"]
    first = api.get(f"/projects/{project.id}/issues/{issue.id}/events?limit=3").json()
    assert first["issue"]["id"] == issue.id
    assert [e["message"] for e in first["events"]] == ["a 4", "a 3", "a 2"]
    rest = api.get(f"/projects/{project.id}/issues/{issue.id}/events?cursor={first['next']}")
    assert [e["message"] for e in rest.json()["events"]] == ["a 1", "a 0"]
    assert rest.json()["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=open", "status"),
        ("?sort=newest", "sort"),
        ("?limit=0", "limit"),
        ("?limit=500", "limit"),
        ("?cursor=not-a-cursor", "cursor"),
        ("?since=yesterday", "since"),
        ("?since=2026-01-02&until=2026-01-01", "until"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(api, project, query, field):
    error = assert_envelope(api.get(f"/projects/{project.id}/issues{query}"), 422,
                            "VALIDATION_ERROR")  # fmt: skip
    assert field in error["details"]


def test_a_cursor_of_another_sort_is_refused(api, project):
    cursor = cursor_encode(datetime.now(UTC), 4)
    error = assert_envelope(api.get(f"/projects/{project.id}/issues?sort=count&cursor={cursor}"),
                            422, "VALIDATION_ERROR")  # fmt: skip
    assert "cursor" in error["details"]


def test_a_bad_status_or_unknown_issue_is_refused(api, project, three_issues):
    issue = three_issues["A_FAILED"]
    path = f"/projects/{project.id}/issues/{issue.id}"
    assert_envelope(api.patch(path, {"status": "closed"}), 422, "VALIDATION_ERROR")
    assert_envelope(api.patch(path, {"status": "resolved", "x": 1}), 422, "VALIDATION_ERROR")
    assert_envelope(api.get(f"/projects/{project.id}/issues/99999999"), 404, "NOT_FOUND")
    assert_envelope(api.get(f"/projects/{project.id}/issues/{2**70}"), 422, "VALIDATION_ERROR")
    assert_envelope(api.get(f"{path}/events?cursor=%%%"), 422, "VALIDATION_ERROR")
    assert Issue.objects.get(id=issue.id).status == "unresolved"


def test_scopes_and_other_projects(make_key, project, other_project, three_issues):
    from tests.api.conftest import ApiClient

    issue = three_issues["A_FAILED"]
    reader = ApiClient(make_key("errors:read"))
    assert reader.get(f"/projects/{project.id}/issues").status_code == 200
    assert_envelope(reader.patch(f"/projects/{project.id}/issues/{issue.id}",
                                 {"status": "resolved"}), 403, "FORBIDDEN")  # fmt: skip
    settings_only = ApiClient(make_key("settings:read"))
    assert_envelope(settings_only.get(f"/projects/{project.id}/issues"), 403, "FORBIDDEN")
    theirs = ApiClient(make_key(on=other_project))
    for path in (f"/projects/{project.id}/issues", f"/projects/{project.id}/issues/{issue.id}"):
        assert_envelope(theirs.get(path), 404, "NOT_FOUND")
    # Their key on their own project cannot reach this project's issue by id.
    assert_envelope(theirs.get(f"/projects/{other_project.id}/issues/{issue.id}"), 404,
                    "NOT_FOUND")  # fmt: skip


def test_session_errors_filter_and_page(api, project, three_issues):
    path = f"/projects/{project.id}/session-errors"
    assert len(api.get(path).json()["errors"]) == 9
    first = api.get(f"{path}?limit=4&code=a_").json()
    assert [e["code"] for e in first["errors"]] == ["A_FAILED"] * 4
    rest = api.get(f"{path}?limit=4&code=a_&cursor={first['next']}").json()
    assert [e["message"] for e in rest["errors"]] == ["a 0"] and rest["next"] is None
    assert [e["message"] for e in api.get(f"{path}?q=lookup").json()["errors"]] == [
        "slow tool lookup_order"]  # fmt: skip
    assert len(api.get(f"{path}?build_id=v2").json()["errors"]) == 4
    assert len(api.get(f"{path}?since=150m").json()["errors"]) == 4
    assert api.get(f"{path}?source=agent").status_code == 200
    assert_envelope(api.get(f"{path}?source=browser"), 422, "VALIDATION_ERROR")
    assert_envelope(api.get(f"{path}?limit=101"), 422, "VALIDATION_ERROR")


def test_session_errors_by_customer_context(api, project):
    items_store([error_item(project.id, customer_context={"plan": "pro", "tier": 3}),
                 error_item(project.id, customer_context={"plan": "free"})])  # fmt: skip
    path = f"/projects/{project.id}/session-errors"
    assert len(api.get(f"{path}?ctx=plan=pro").json()["errors"]) == 1
    assert len(api.get(f"{path}?ctx=tier=3").json()["errors"]) == 1
    assert api.get(f"{path}?ctx=plan=gold").json()["errors"] == []
