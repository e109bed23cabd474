"""GET/PATCH session-settings through the one settings service."""

from __future__ import annotations

import pytest

from errorsink.projects.models import SettingsChange
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db


def test_it_shows_the_settings_and_the_env_of_the_next_deploy(api, project):
    body = api.get(f"/projects/{project.id}/session-settings").json()
    assert body["error_message"] == "Sorry, something went wrong."
    assert body["idle_timeout_seconds"] == 300
    assert body["deploy_env"] == {
        "AGENT_CRASH_TTS_MESSAGE": "Sorry, something went wrong.",
        "AGENT_IDLE_TIMEOUT_SECONDS": "300",
    }


def test_it_changes_settings_and_records_the_key_as_the_actor(api, key, project):
    response = api.patch(
        f"/projects/{project.id}/session-settings",
        {"error_message": "  Sorry, try again.  ", "idle_timeout_seconds": 120},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_message"] == "Sorry, try again."
    assert body["deploy_env"]["AGENT_IDLE_TIMEOUT_SECONDS"] == "120"
    actors = set(SettingsChange.objects.filter(project=project).values_list("actor", flat=True))
    assert actors == {f"api-key:{key[:11]}"}


def test_it_changes_only_the_fields_given(api, project):
    api.patch(f"/projects/{project.id}/session-settings", {"idle_timeout_seconds": 60})
    body = api.get(f"/projects/{project.id}/session-settings").json()
    assert body["idle_timeout_seconds"] == 60
    assert body["error_message"] == "Sorry, something went wrong."


def test_it_answers_422_with_details_for_a_600_character_message(api, project):
    response = api.patch(f"/projects/{project.id}/session-settings", {"error_message": "x" * 600})
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert "500" in error["details"]["error_message"]
    assert api.get(f"/projects/{project.id}/session-settings").json()["error_message"] == (
        "Sorry, something went wrong."
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"idle_timeout_seconds": 5}, "idle_timeout_seconds"),
        ({"idle_timeout_seconds": "soon"}, "idle_timeout_seconds"),
        ({"error_message": None}, "error_message"),
        ({"error_message": "a\nb"}, "error_message"),
        ({"error_message": "   "}, "error_message"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_it_names_each_invalid_field(api, project, body, field):
    response = api.patch(f"/projects/{project.id}/session-settings", body)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert field in error["details"]


def test_it_changes_nothing_when_one_field_is_invalid(api, project):
    response = api.patch(
        f"/projects/{project.id}/session-settings",
        {"error_message": "Fine message", "idle_timeout_seconds": 99999},
    )
    assert_envelope(response, 422, "VALIDATION_ERROR")
    assert not SettingsChange.objects.filter(project=project).exists()


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"error_message": "x",}'])
def test_it_answers_400_for_broken_json(api, project, body):
    response = api.patch(f"/projects/{project.id}/session-settings", body)
    assert_envelope(response, 400, "BAD_REQUEST")


def test_it_answers_422_for_a_body_that_is_not_an_object(api, project):
    response = api.patch(f"/projects/{project.id}/session-settings", b"[1, 2]")
    assert_envelope(response, 422, "VALIDATION_ERROR")


def test_it_reads_settings_in_a_fixed_number_of_queries(api, project, django_assert_num_queries):
    api.get(f"/projects/{project.id}/session-settings")
    with django_assert_num_queries(2):  # the key (with its project), the settings row
        assert api.get(f"/projects/{project.id}/session-settings").status_code == 200


# --- event retention, beside the session settings --------------------------------------------


def test_it_shows_and_changes_the_retention_with_the_settings(api, key, project):
    assert api.get(f"/projects/{project.id}/session-settings").json()["retention_days"] == 30
    response = api.patch(f"/projects/{project.id}/session-settings", {"retention_days": 90})
    assert response.status_code == 200
    body = response.json()
    assert body["retention_days"] == 90
    assert "retention" not in str(body["deploy_env"])  # nothing an agent is deployed with
    project.refresh_from_db()
    assert project.retention_days == 90
    change = SettingsChange.objects.get(project=project)
    assert (change.field, change.old_value, change.new_value, change.actor) == (
        "retention_days", "30", "90", f"api-key:{key[:11]}"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (0, "between 1 and 400 days"),
        (401, "between 1 and 400 days"),
        ("thirty", ""),
        (None, ""),
        (7.5, ""),
        (True, ""),  # never a one-day retention
        ("90", ""),
    ],
)
def test_it_answers_422_for_a_retention_out_of_range_and_saves_nothing(api, project, value, says):
    response = api.patch(
        f"/projects/{project.id}/session-settings",
        {"retention_days": value, "error_message": "Fine words"},
    )
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert list(error["details"]) == ["retention_days"]
    assert says in error["details"]["retention_days"]
    body = api.get(f"/projects/{project.id}/session-settings").json()
    assert (body["retention_days"], body["error_message"]) == (30, "Sorry, something went wrong.")
    assert not SettingsChange.objects.filter(project=project).exists()


def test_it_publishes_the_retention_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "retention_days" in schemas["SessionSettingsOut"]["required"]
    assert (
        "1 to 400" in schemas["SessionSettingsPatch"]["properties"]["retention_days"]["description"]
    )


# --- ingest quota -------------------------------------------------------------------------------


def test_it_shows_and_changes_the_ingest_quota(api, project):
    url = f"/projects/{project.id}/session-settings"
    assert api.get(url).json()["ingest_quota"] is None  # the server's default
    assert api.patch(url, {"ingest_quota": 250}).json()["ingest_quota"] == 250
    assert api.patch(url, {"ingest_quota": None}).json()["ingest_quota"] is None
    project.refresh_from_db()
    assert project.ingest_quota is None


@pytest.mark.parametrize("value", [-1, 10_000_001, "100", True, 1.5])
def test_it_answers_422_for_an_ingest_quota_that_is_not_a_rate(api, project, value):
    response = api.patch(f"/projects/{project.id}/session-settings", {"ingest_quota": value})
    assert_envelope(response, 422, "VALIDATION_ERROR")
    project.refresh_from_db()
    assert project.ingest_quota is None
