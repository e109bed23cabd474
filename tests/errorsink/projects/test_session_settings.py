"""The settings service: the one place that validates, changes and records session settings."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from errorsink.projects.models import SessionSettings, SettingsChange
from errorsink.projects.services import project_create
from errorsink.projects.session_settings import (
    SettingsInvalid,
    session_settings_get,
    session_settings_history,
    session_settings_update,
    session_settings_validate,
)
from errorsink.sessions.models import Event

pytestmark = pytest.mark.django_db


def test_it_creates_settings_at_their_defaults_with_the_project(alice):
    project = project_create(name="Fresh", owner=alice)
    settings = SessionSettings.objects.get(project=project)
    assert (settings.error_message, settings.idle_timeout_seconds) == (
        "Sorry, something went wrong.",
        300,
    )
    assert settings.deploy_env() == {
        "AGENT_CRASH_TTS_MESSAGE": "Sorry, something went wrong.",
        "AGENT_IDLE_TIMEOUT_SECONDS": "300",
    }


def test_it_trims_the_message_and_accepts_the_limits():
    assert session_settings_validate({"error_message": "  Hi  "}) == {"error_message": "Hi"}
    assert session_settings_validate({"error_message": "x"})["error_message"] == "x"
    assert len(session_settings_validate({"error_message": "é" * 500})["error_message"]) == 500
    assert session_settings_validate({"idle_timeout_seconds": "10"}) == {"idle_timeout_seconds": 10}
    assert session_settings_validate({"idle_timeout_seconds": 3600}) == {
        "idle_timeout_seconds": 3600
    }


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"error_message": ""}, "error_message", "must not be empty"),
        ({"error_message": " \n\t "}, "error_message", "must not be empty"),
        ({"error_message": "x" * 501}, "error_message", "at most 500 characters (got 501)"),
        ({"error_message": "a\x07b"}, "error_message", "control characters (found U+0007)"),
        ({"error_message": "a\nb"}, "error_message", "control characters (found U+000A)"),
        ({"error_message": "a\x7fb"}, "error_message", "control characters (found U+007F)"),
        ({"error_message": 42}, "error_message", "must be a string"),
        ({"idle_timeout_seconds": 9}, "idle_timeout_seconds", "between 10 and 3600"),
        ({"idle_timeout_seconds": "3601"}, "idle_timeout_seconds", "between 10 and 3600"),
        ({"idle_timeout_seconds": "abc"}, "idle_timeout_seconds", "whole number"),
        ({"idle_timeout_seconds": True}, "idle_timeout_seconds", "whole number"),
        ({"idle_timeout_seconds": 30.5}, "idle_timeout_seconds", "whole number"),
        ({"colour": "blue"}, "colour", "unknown setting"),
    ],
)
def test_it_names_each_invalid_field(changes, field, fragment):
    with pytest.raises(SettingsInvalid) as raised:
        session_settings_validate(changes)
    assert list(raised.value.errors) == [field]
    assert fragment in raised.value.errors[field]


def test_it_changes_nothing_when_any_field_is_invalid(project, alice):
    with pytest.raises(SettingsInvalid) as raised:
        session_settings_update(
            project=project,
            changes={"error_message": "Valid words", "idle_timeout_seconds": 5},
            user=alice,
        )
    assert list(raised.value.errors) == ["idle_timeout_seconds"]
    settings = session_settings_get(project=project)
    assert (settings.error_message, settings.idle_timeout_seconds) == (
        "Sorry, something went wrong.",
        300,
    )
    assert not SettingsChange.objects.exists()


def test_it_records_who_changed_what_from_what_to_what(project, alice):
    settings = session_settings_update(
        project=project,
        changes={"error_message": "One moment.", "idle_timeout_seconds": 300},
        user=alice,
    )
    assert settings.deploy_env()["AGENT_CRASH_TTS_MESSAGE"] == "One moment."
    [change] = SettingsChange.objects.all()  # the unchanged timeout leaves no row
    assert (change.user, change.actor, change.field, change.old_value, change.new_value) == (
        alice,
        "alice",
        "error_message",
        "Sorry, something went wrong.",
        "One moment.",
    )
    assert change.changed_at is not None


def test_it_names_a_non_user_actor(project):
    session_settings_update(project=project, changes={"idle_timeout_seconds": 60}, actor="key:ab12")
    assert SettingsChange.objects.get().actor == "key:ab12"


def test_it_lists_history_newest_first_and_limited(project, alice):
    for seconds in range(20, 35):
        session_settings_update(
            project=project, changes={"idle_timeout_seconds": seconds}, user=alice
        )
    history = session_settings_history(project=project)
    assert [change.new_value for change in history] == [str(s) for s in range(34, 24, -1)]
    assert len(session_settings_history(project=project, limit=3)) == 3


def test_it_refuses_unicode_line_separators_and_non_ascii_digit_timeouts():
    from errorsink.projects.session_settings import SettingsInvalid, session_settings_validate

    for changes in ({"error_message": "one\u2028two"}, {"idle_timeout_seconds": "3_0"},
                    {"idle_timeout_seconds": "٣٠"}):  # fmt: skip
        with pytest.raises(SettingsInvalid):
            session_settings_validate(changes)


# --- event retention, edited beside the session settings and stored on the project -----------


def test_it_accepts_a_retention_from_one_to_four_hundred_days():
    assert session_settings_validate({"retention_days": "1"}) == {"retention_days": 1}
    assert session_settings_validate({"retention_days": 400}) == {"retention_days": 400}
    assert session_settings_validate({"retention_days": " 90 "}) == {"retention_days": 90}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "retention_days must be between 1 and 400 days"),
        ("401", "retention_days must be between 1 and 400 days"),
        ("-1", "retention_days must be between 1 and 400 days"),
        ("thirty", "retention_days must be a whole number of days"),
        ("", "retention_days must be a whole number of days"),
        ("--5", "retention_days must be a whole number of days"),
        ("3_0", "retention_days must be a whole number of days"),
        (30.5, "retention_days must be a whole number of days"),
        (True, "retention_days must be a whole number of days"),
        (None, "retention_days must be a whole number of days"),
    ],
)
def test_it_refuses_a_retention_owners_cannot_choose(value, fragment):
    with pytest.raises(SettingsInvalid) as raised:
        session_settings_validate({"retention_days": value})
    assert raised.value.errors == {"retention_days": fragment}


def test_it_stores_the_retention_on_the_project_and_records_the_change(project, alice):
    before = session_settings_get(project=project).updated_at
    settings = session_settings_update(project=project, changes={"retention_days": "90"},
                                       user=alice)  # fmt: skip
    assert settings.project.retention_days == 90
    project.refresh_from_db()
    assert project.retention_days == 90
    assert settings.updated_at > before  # the settings as a whole changed
    [change] = SettingsChange.objects.all()
    assert (change.actor, change.field, change.old_value, change.new_value) == (
        "alice", "retention_days", "30", "90"
    )  # fmt: skip
    assert session_settings_get(project=project).project.retention_days == 90


@pytest.mark.parametrize(
    "changes",
    [
        {"retention_days": 90, "idle_timeout_seconds": 5},
        {"retention_days": 0, "error_message": "Valid words"},
    ],
)
def test_it_changes_no_retention_or_setting_when_any_field_is_invalid(project, alice, changes):
    with pytest.raises(SettingsInvalid):
        session_settings_update(project=project, changes=changes, user=alice)
    project.refresh_from_db()
    settings = session_settings_get(project=project)
    assert (project.retention_days, settings.error_message, settings.idle_timeout_seconds) == (
        30, "Sorry, something went wrong.", 300
    )  # fmt: skip
    assert not SettingsChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_never_holds_up_ingest_of_the_project_while_saving(project, alice):
    """The project row is locked FOR NO KEY UPDATE: an event insert checks its project with
    KEY SHARE, which that lock does not block."""
    db = connection.settings_dict
    with transaction.atomic():
        session_settings_update(project=project, changes={"retention_days": 60}, user=alice)
        with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                             password=db["PASSWORD"], dbname=db["NAME"]) as ingest:  # fmt: skip
            ingest.execute("SET lock_timeout = '2s'")
            ingest.execute(
                "INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name,"
                " message, occurred_at, received_at, source, severity, build_id, stack, details,"
                " item_type, raw) VALUES (%s, 'during-save', '', 'error', 'X', '', '', now(),"
                " now(), 'agent', 'high', '', '', '{}', 'session_error', '{}')",
                [project.pk],
            )
            ingest.commit()
    assert Event.objects.filter(event_id="during-save").exists()
