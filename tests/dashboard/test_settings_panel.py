"""The session settings panel: who sees and edits what, validation, history, query counts."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from errorsink.projects.models import SessionSettings, SettingsChange
from errorsink.projects.session_settings import session_settings_update

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _url(project) -> str:
    return reverse("session-settings", args=[project.id])


def _stored(project) -> tuple[str, int]:
    settings = SessionSettings.objects.get(project=project)
    return settings.error_message, settings.idle_timeout_seconds


def _retention(project) -> int:
    project.refresh_from_db()
    return project.retention_days


def _save(client, project, message="Sorry, something went wrong.", timeout="300", retention="30",
          ingest_quota=None, **extra):  # fmt: skip
    data = {"error_message": message, "idle_timeout_seconds": timeout, "retention_days": retention}
    if ingest_quota is not None:
        data["ingest_quota"] = ingest_quota
    return client.post(_url(project), data, **{**HTMX, **extra})


# --- access -----------------------------------------------------------------------------------


def test_it_shows_the_owner_an_editable_panel(client, project, alice):
    client.force_login(alice)
    response = client.get(_url(project), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="session-settings"')  # the partial only
    assert (
        "<form" in html and 'name="error_message"' in html and 'name="idle_timeout_seconds"' in html
    )
    assert f'hx-post="{_url(project)}"' in html
    assert 'hx-target="#session-settings"' in html and 'hx-swap="outerHTML"' in html
    assert "X-CSRFToken" in html
    assert "Changes apply on the next deploy as <code>AGENT_CRASH_TTS_MESSAGE</code>" in html
    assert "28 / 500" in html
    assert re.search(r'<input id="ss-retention" name="retention_days"[^>]*\s+value="30"', html)
    assert "Quality figures are kept 13 months." in html


def test_it_renders_a_full_page_without_htmx(client, project, alice):
    client.force_login(alice)
    response = client.get(_url(project))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<!doctype html>" in html and 'id="session-settings"' in html
    assert "errorsink/settings.js" in html and "errorsink/settings.css" in html


def test_it_shows_a_member_the_values_read_only(client, project, bob):
    client.force_login(bob)
    response = client.get(_url(project), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sorry, something went wrong." in html and "300 seconds" in html
    assert "<dt>Event retention</dt>" in html and "<dd>30 days" in html
    for control in ("<form", "<textarea", "<input", 'type="submit"', "hx-post"):
        assert control not in html
    assert "Only project owners can change these settings." in html


def test_it_hides_the_panel_from_an_outsider(client, project, charlie):
    client.force_login(charlie)
    assert client.get(_url(project), **HTMX).status_code == 404
    assert client.get(_url(project)).status_code == 404


def test_it_sends_an_anonymous_visitor_to_sign_in(client, project):
    response = client.get(_url(project))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_refuses_a_forged_post_from_a_member(client, project, bob):
    client.force_login(bob)
    response = _save(client, project, message="Bob was here", timeout="60", retention="1")
    assert response.status_code == 403
    assert _stored(project) == ("Sorry, something went wrong.", 300)
    assert _retention(project) == 30
    assert not SettingsChange.objects.exists()


def test_it_answers_404_to_a_post_from_an_outsider(client, project, charlie):
    client.force_login(charlie)
    response = _save(client, project, message="Charlie was here")
    assert response.status_code == 404
    assert _stored(project) == ("Sorry, something went wrong.", 300)
    assert not SettingsChange.objects.exists()


def test_it_requires_the_csrf_token(project, alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert _save(client, project, message="No token").status_code == 403
    token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get(_url(project)).content.decode())[1]
    response = _save(client, project, message="With token", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert _stored(project)[0] == "With token"


# --- saving -----------------------------------------------------------------------------------


def test_it_saves_and_records_one_change_per_changed_field(client, project, alice):
    client.force_login(alice)
    response = _save(client, project, message="  Sorry, let me get a human.  ", timeout="120")
    assert response.status_code == 200
    html = response.content.decode()
    assert _stored(project) == ("Sorry, let me get a human.", 120)
    assert 'class="saved" role="status">Saved<' in html
    assert (
        '<code data-deploy-env="AGENT_CRASH_TTS_MESSAGE">Sorry, let me get a human.</code>' in html
    )
    assert '<code data-deploy-env="AGENT_IDLE_TIMEOUT_SECONDS">120</code>' in html
    changes = list(SettingsChange.objects.order_by("field").values_list(
        "field", "old_value", "new_value", "actor", "user"))  # fmt: skip
    assert changes == [
        ("error_message", "Sorry, something went wrong.", "Sorry, let me get a human.", "alice",
         alice.pk),
        ("idle_timeout_seconds", "300", "120", "alice", alice.pk),
    ]  # fmt: skip


def test_it_records_only_the_field_that_changed(client, project, alice):
    client.force_login(alice)
    _save(client, project, timeout="45")
    assert list(SettingsChange.objects.values_list("field", flat=True)) == ["idle_timeout_seconds"]


def test_it_saves_the_retention_and_records_it_beside_the_settings(client, project, alice):
    client.force_login(alice)
    html = _save(client, project, retention=" 90 ").content.decode()
    assert _retention(project) == 90
    assert 'class="saved" role="status">Saved<' in html
    assert re.search(r'name="retention_days"[^>]*\s+value="90"', html)
    change = SettingsChange.objects.get()
    assert (change.field, change.old_value, change.new_value, change.actor) == (
        "retention_days", "30", "90", "alice"
    )  # fmt: skip
    history = html.split('class="settings-history"')[1]
    assert "<td>Event retention</td>" in history


@pytest.mark.parametrize(
    ("retention", "error"),
    [
        ("0", "Event retention must be between 1 and 400 days"),
        ("401", "Event retention must be between 1 and 400 days"),
        ("thirty", "Event retention must be a whole number of days"),
        ("", "Event retention must be a whole number of days"),
        ("7.5", "Event retention must be a whole number of days"),
    ],
)
def test_it_refuses_a_retention_out_of_range_and_changes_nothing(
    client, project, alice, retention, error
):
    client.force_login(alice)
    html = _save(client, project, message="A valid new message", retention=retention)
    html = html.content.decode()
    assert f'<p class="field-error" id="ss-retention-error" role="alert">{error}</p>' in html
    assert html.count('class="field-error"') == 1
    assert 'aria-invalid="true"' in html and "Not saved" in html
    assert f'value="{retention}"' in html  # kept in the box for fixing
    assert _retention(project) == 30
    assert _stored(project) == ("Sorry, something went wrong.", 300)
    assert not SettingsChange.objects.exists()


MSG, IDLE = "error_message", "idle_timeout_seconds"
CONTROL = "Crash TTS message must not contain control characters"


@pytest.mark.parametrize(
    ("message", "timeout", "field", "error"),
    [
        ("", "300", MSG, "Crash TTS message must not be empty"),
        ("   \t  ", "300", MSG, "Crash TTS message must not be empty"),
        ("x" * 501, "300", MSG, "Crash TTS message must be at most 500 characters (got 501)"),
        ("Sorry\x07 bell", "300", MSG, f"{CONTROL} (found U+0007)"),
        ("Sorry\nagain", "300", MSG, f"{CONTROL} (found U+000A)"),
        ("Fine message", "9", IDLE, "Idle timeout must be between 10 and 3600 seconds"),
        ("Fine message", "3601", IDLE, "Idle timeout must be between 10 and 3600 seconds"),
        ("Fine message", "abc", IDLE, "Idle timeout must be a whole number of seconds"),
        ("Fine message", "", IDLE, "Idle timeout must be a whole number of seconds"),
    ],
)
def test_it_refuses_an_invalid_value_and_changes_nothing(
    client, project, alice, message, timeout, field, error
):
    client.force_login(alice)
    response = _save(client, project, message=message, timeout=timeout)
    assert response.status_code == 200
    html = response.content.decode()
    # The message sits beside its own field, and only there.
    beside = {MSG: "ss-error-message-error", IDLE: "ss-idle-timeout-error"}
    assert f'<p class="field-error" id="{beside[field]}" role="alert">{error}' in html
    assert html.count('class="field-error"') == 1
    assert "Not saved" in html and ">Saved<" not in html
    # Nothing at all is stored, not even the valid other field, and no history is written.
    assert _stored(project) == ("Sorry, something went wrong.", 300)
    assert not SettingsChange.objects.exists()
    assert (
        '<code data-deploy-env="AGENT_CRASH_TTS_MESSAGE">Sorry, something went wrong.</code>'
        in html
    )


def test_it_keeps_the_rejected_input_in_the_form_escaped(client, project, alice):
    client.force_login(alice)
    long = "<b>x</b>" + "y" * 600
    html = _save(client, project, message=long, timeout="abc").content.decode()
    assert f">&lt;b&gt;x&lt;/b&gt;{'y' * 600}</textarea>" in html
    assert 'value="abc"' in html
    assert "<b>x</b>" not in html
    assert html.count('class="field-error"') == 2


def test_it_shows_a_member_no_saved_values_of_others_unescaped(client, project, alice, bob):
    session_settings_update(project=project, changes={"error_message": "<script>x</script>"},
                            user=alice)  # fmt: skip
    client.force_login(bob)
    html = client.get(_url(project), **HTMX).content.decode()
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_it_answers_a_plain_form_post_with_the_full_page(client, project, alice):
    client.force_login(alice)
    response = client.post(
        _url(project), {"error_message": "No JS here", "idle_timeout_seconds": "300"}
    )
    assert response.status_code == 200
    assert "<!doctype html>" in response.content.decode()
    assert _stored(project)[0] == "No JS here"


# --- history ----------------------------------------------------------------------------------


def test_it_lists_the_last_ten_changes_newest_first(client, project, alice):
    for n in range(12):
        session_settings_update(project=project, changes={"idle_timeout_seconds": 100 + n},
                                user=alice)  # fmt: skip
    client.force_login(alice)
    html = client.get(_url(project), **HTMX).content.decode()
    history = html.split('class="settings-history"')[1]
    rows = re.findall(r'<td class="value">(\d+)</td>\s*<td class="value">(\d+)</td>', history)
    assert rows == [(str(99 + n), str(100 + n)) for n in range(11, 1, -1)]
    assert history.count("<td>alice</td>") == 10
    assert history.count("<td>Idle timeout</td>") == 10
    exact = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.search(rf'<time datetime="\d{{4}}-[^"]+" title="{exact}">just now</time>', history)


def test_it_says_when_there_is_no_history(client, project, bob):
    client.force_login(bob)
    assert "No changes yet." in client.get(_url(project), **HTMX).content.decode()


# --- cost -------------------------------------------------------------------------------------


def test_it_renders_the_panel_in_a_fixed_number_of_queries(
    client, project, alice, django_assert_num_queries
):
    for n in range(12):
        session_settings_update(project=project, changes={"idle_timeout_seconds": 100 + n},
                                user=alice)  # fmt: skip
    client.force_login(alice)
    # session, user, membership+project, settings, history (users joined in)
    with django_assert_num_queries(5):
        assert client.get(_url(project), **HTMX).status_code == 200


def test_it_saves_in_a_fixed_number_of_queries(client, project, alice, django_assert_num_queries):
    client.force_login(alice)
    # session, user, membership+project, savepoint, settings and project FOR NO KEY UPDATE,
    # update, one insert for both history rows, release, history
    with django_assert_num_queries(9):
        _save(client, project, message="New words", timeout="90")
    # A changed retention adds the project's update, and its history row joins the same insert.
    with django_assert_num_queries(10):
        _save(client, project, message="Newer words", timeout="90", retention="60")


# --- template tag -----------------------------------------------------------------------------


def _render_tag(project, user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load session_settings %}{% session_settings_panel project %}")
    return template.render(Context({"project": project, "request": request}))


def test_it_renders_the_panel_from_the_template_tag_for_the_owner(project, alice):
    html = _render_tag(project, alice)
    assert 'id="session-settings"' in html and "<textarea" in html
    assert "errorsink/settings.js" in html and "errorsink/settings.css" in html


def test_it_renders_the_panel_from_the_template_tag_read_only_for_a_member(project, bob):
    html = _render_tag(project, bob)
    assert 'id="session-settings"' in html and "<textarea" not in html and "<form" not in html


def test_it_renders_nothing_from_the_template_tag_for_an_outsider(project, charlie):
    assert _render_tag(project, charlie).strip() == ""


def test_it_has_no_inline_script_or_event_handler(client, project, alice):
    client.force_login(alice)
    html = client.get(_url(project)).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=", html)


# --- ingest quota, beside the retention ---------------------------------------------------------


def test_it_saves_an_ingest_quota_and_empty_returns_it_to_the_default(client, project, alice):
    client.force_login(alice)
    html = _save(client, project, ingest_quota="100").content.decode()
    project.refresh_from_db()
    assert project.ingest_quota == 100 and "Saved" in html
    assert re.search(r'name="ingest_quota"[^>]*\s+value="100"', html)
    html = _save(client, project, ingest_quota=" ").content.decode()
    project.refresh_from_db()
    assert project.ingest_quota is None
    assert "this server's default (5000)" in html
    changes = SettingsChange.objects.filter(field="ingest_quota").order_by("id")
    assert [(c.old_value, c.new_value) for c in changes] == [("default", "100"), ("100", "default")]


@pytest.mark.parametrize(
    ("quota", "error"),
    [
        ("-1", "Ingest quota must be between 0 and 10000000 events a second"),
        ("fast", "Ingest quota must be a whole number of events a second"),
        ("10000001", "Ingest quota must be between 0 and 10000000 events a second"),
    ],
)
def test_it_refuses_an_ingest_quota_that_is_not_a_rate(client, project, alice, quota, error):
    client.force_login(alice)
    html = _save(client, project, ingest_quota=quota).content.decode()
    assert f'id="ss-ingest-quota-error" role="alert">{error}</p>' in html
    project.refresh_from_db()
    assert project.ingest_quota is None


def test_a_member_reads_the_ingest_quota(client, project, bob):
    project.ingest_quota = 0
    project.save()
    client.force_login(bob)
    html = client.get(_url(project), **HTMX).content.decode()
    assert "<dt>Ingest quota</dt>\n    <dd>no limit</dd>" in html
