"""The alert-rules API (docs/alerts.md): scopes, bad input refused with details and nothing
saved, another project's rules out of reach."""

from __future__ import annotations

import pytest

from errorsink.alerts.models import AlertRule
from tests.api.conftest import ApiClient, assert_envelope

pytestmark = pytest.mark.django_db

GOOD = {
    "condition": {"type": "event_count", "threshold": 10, "window_seconds": 300},
    "channels": [{"type": "webhook", "url": "https://hooks.example.com/errorsink"}],
}


def _path(project, rule_id: int | None = None) -> str:
    return f"/projects/{project.id}/alert-rules" + (f"/{rule_id}" if rule_id else "")


def test_an_owner_key_creates_lists_mutes_and_deletes_a_rule(api, project):
    created = api.post(_path(project), GOOD)
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["name"] == "More than 10 errors in 5 minutes"
    assert (rule["cooldown_seconds"], rule["muted"], rule["firing"]) == (600, False, False)
    listed = api.get(_path(project)).json()["rules"]
    assert [r["id"] for r in listed] == [rule["id"]]
    muted = api.patch(_path(project, rule["id"]), {"muted": True}).json()
    assert muted["muted"] is True and muted["condition"] == GOOD["condition"]
    assert api.client.delete(f"/api/v1{_path(project, rule['id'])}",
                             headers=api._headers(None)).status_code == 204  # fmt: skip
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"condition": {**GOOD["condition"], "threshold": -1}}, "threshold"),
        ({"condition": {**GOOD["condition"], "threshold": 10**12}}, "threshold"),
        ({"condition": {**GOOD["condition"], "window_seconds": 30}}, "window_seconds"),
        ({"condition": {**GOOD["condition"], "window_seconds": 90_000}}, "window_seconds"),
        ({"condition": {"type": "degraded_share", "threshold": 1.5, "window_seconds": 600}},
         "threshold"),
        ({"condition": {"type": "sometimes"}}, "condition"),
        ({"channels": [{"type": "webhook", "url": "ftp://example.com/x"}]}, "url"),
        ({"channels": [{"type": "slack", "url": "not a url"}]}, "url"),
        ({"channels": [{"type": "email", "to": []}]}, "to"),
        ({"channels": [{"type": "email", "to": ["nobody"]}]}, "to"),
        ({"channels": []}, "channels"),
        ({"cooldown_seconds": 0}, "cooldown_seconds"),
    ],
)  # fmt: skip
def test_bad_input_gets_422_with_details_and_saves_nothing(api, project, change, field):
    error = assert_envelope(api.post(_path(project), {**GOOD, **change}), 422, "VALIDATION_ERROR")
    assert any(field in key for key in error["details"]), error["details"]
    assert not AlertRule.objects.exists()


def test_an_issue_of_another_project_is_refused(api, project, other_project):
    from errorsink.issues.models import Issue

    foreign = Issue.objects.create(project=other_project, fingerprint="0" * 32, title="x",
                                   code="X", first_seen="2026-11-22T00:00:00Z",
                                   last_seen="2026-11-22T00:00:00Z")  # fmt: skip
    body = {**GOOD, "condition": {**GOOD["condition"], "issue_id": foreign.id}}
    error = assert_envelope(api.post(_path(project), body), 422, "VALIDATION_ERROR")
    assert "issue_id" in " ".join(error["details"])
    assert not AlertRule.objects.exists()


def test_reading_needs_settings_read_and_changing_settings_write(make_key, project):
    reader = ApiClient(make_key("settings:read"))
    assert reader.get(_path(project)).status_code == 200
    assert_envelope(reader.post(_path(project), GOOD), 403, "FORBIDDEN")
    errors_only = ApiClient(make_key("errors:read,errors:write"))
    assert_envelope(errors_only.get(_path(project)), 403, "FORBIDDEN")


def test_another_projects_rule_is_not_found(api, project, other_project, make_key):
    theirs = ApiClient(make_key(on=other_project)).post(_path(other_project), GOOD).json()
    assert_envelope(api.patch(_path(project, theirs["id"]), {"muted": True}), 404, "NOT_FOUND")
    assert_envelope(api.get(_path(other_project)), 404, "NOT_FOUND")  # as for every route
    assert AlertRule.objects.get(id=theirs["id"]).muted is False
