"""The alert pages as alice (owner), bob (member) and charlie (outsider): owners create, edit,
mute, test and delete; members read; outsiders see nothing; bad input says what is wrong and
saves nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from errorsink.alerts.models import AlertFiring, AlertRule
from errorsink.alerts.rules import RuleIn, rule_create

pytestmark = pytest.mark.django_db

FORM = {"type": "event_count", "threshold": "10", "window_minutes": "5", "code": "",
        "issue_id": "", "share_percent": "20", "min_sessions": "20",
        "webhook_url": "https://hooks.example.com/x", "slack_url": "", "email_to": "",
        "cooldown_minutes": "10", "name": ""}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda pk: None)


@pytest.fixture
def rule(project) -> AlertRule:
    return rule_create(project=project, data=RuleIn(
        name="Crash storm",
        condition={"type": "event_count", "threshold": 5, "window_seconds": 600},
        channels=[{"type": "email", "to": ["oncall@example.com"]}],
    ))  # fmt: skip


def _urls(project, rule) -> dict[str, str]:
    return {
        "list": reverse("alert-rules", args=[project.id]),
        "new": reverse("alert-rule-new", args=[project.id]),
        "rule": reverse("alert-rule", args=[project.id, rule.id]),
        "edit": reverse("alert-rule-edit", args=[project.id, rule.id]),
        "act": reverse("alert-rule-act", args=[project.id, rule.id]),
    }


def test_an_owner_creates_a_rule_from_the_form(client, alice, project):
    client.force_login(alice)
    form = {**FORM, "code": "TOOL_FAILED", "email_to": "a@example.com, b@x.org"}
    response = client.post(reverse("alert-rule-new", args=[project.id]), form)
    rule = AlertRule.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "alert-rule", args=[project.id, rule.id]
    )
    assert rule.condition == {"type": "event_count", "threshold": 10, "window_seconds": 300,
                              "code": "TOOL_FAILED"}  # fmt: skip
    assert rule.channels == [{"type": "webhook", "url": "https://hooks.example.com/x"},
                             {"type": "email", "to": ["a@example.com", "b@x.org"]}]  # fmt: skip
    assert (rule.name, rule.cooldown_seconds) == ("More than 10 TOOL_FAILED errors in 5 minutes",
                                                  600)  # fmt: skip
    page = client.get(response.url).content.decode()
    assert "More than 10 TOOL_FAILED errors in 5 minutes" in page and "It has not fired yet" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": "-3"}, "Threshold: Input should be greater than or equal to 0"),
        ({"threshold": "many"}, "Threshold: a number, please"),
        ({"window_minutes": "0"}, "Window: at least 1 minutes"),
        ({"window_minutes": "2000"}, "Window: at most 1440 minutes"),
        ({"webhook_url": "ftp://example.com/x"}, "Webhook URL: an http:// or https:// URL"),
        ({"webhook_url": ""}, "Channels: give at least one"),
        ({"email_to": "not-an-address"}, "is not an email address"),
        ({"type": "degraded_share", "share_percent": "150"}, "Degraded share: between 0 and 100"),
        (
            {"type": "latency_p95", "stage": "llm", "threshold_ms": "0", "min_turns": "20"},
            "Latency: Input should be greater than 0",
        ),
        (
            {"type": "latency_p95", "stage": "dns", "threshold_ms": "900", "min_turns": "20"},
            "Stage: Input should be",
        ),
    ],
)
def test_bad_input_is_named_on_the_page_and_nothing_is_saved(client, alice, project, change,
                                                             message):  # fmt: skip
    client.force_login(alice)
    response = client.post(reverse("alert-rule-new", args=[project.id]), {**FORM, **change})
    assert response.status_code == 422
    page = response.content.decode()
    assert "Not saved" in page and message in page, page[page.find("Not saved") :][:600]
    assert not AlertRule.objects.exists()


def test_an_issue_of_another_project_is_refused_on_the_form(client, alice, project):
    client.force_login(alice)
    response = client.post(reverse("alert-rule-new", args=[project.id]),
                           {**FORM, "issue_id": "999999"})  # fmt: skip
    assert response.status_code == 422 and "no issue 999999 in this project" in response.text
    assert not AlertRule.objects.exists()


def test_an_owner_edits_mutes_tests_and_deletes(client, alice, project, rule):
    client.force_login(alice)
    urls = _urls(project, rule)
    form = {**FORM, "name": "Crash storm", "threshold": "7", "webhook_url": "",
            "email_to": "oncall@example.com"}  # fmt: skip
    assert client.post(urls["edit"], form).status_code == 302
    rule.refresh_from_db()
    assert rule.condition["threshold"] == 7 and rule.name == "Crash storm"
    client.post(urls["act"], {"action": "mute"})
    assert AlertRule.objects.get(id=rule.id).muted is True
    client.post(urls["act"], {"action": "test"})
    firing = AlertFiring.objects.get(rule=rule)
    assert firing.test is True and firing.body["test"] is True
    page = client.get(urls["rule"]).content.decode()
    assert "muted" in page and "test" in page and "waiting for its first attempt" in page
    client.post(urls["act"], {"action": "delete"})
    assert not AlertRule.objects.exists()


def test_a_member_reads_but_cannot_change(client, bob, project, rule):
    client.force_login(bob)
    urls = _urls(project, rule)
    listing = client.get(urls["list"]).content.decode()
    assert "Crash storm" in listing and "Only the project's owners" in listing
    assert "<form" not in client.get(urls["rule"]).content.decode().split("</header>")[-1]
    assert client.post(urls["new"], FORM).status_code == 403
    assert client.post(urls["edit"], FORM).status_code == 403
    assert client.post(urls["act"], {"action": "delete"}).status_code == 403
    assert AlertRule.objects.get(id=rule.id).condition["threshold"] == 5


def test_an_outsider_and_a_stranger_see_nothing(client, charlie, project, rule):
    for login in (charlie, None):
        client.logout()
        if login:
            client.force_login(login)
        for name, url in _urls(project, rule).items():
            response = client.post(url, FORM) if name in ("new", "edit", "act") else \
                client.get(url)  # fmt: skip
            expected = 404 if login else 302  # anonymous: to sign-in
            assert response.status_code == expected, (name, login)
    assert AlertRule.objects.count() == 1


def test_the_project_page_says_which_rules_are_firing(client, bob, project, rule):
    AlertRule.objects.filter(id=rule.id).update(holding=True)
    client.force_login(bob)
    page = client.get(reverse("project", args=[project.id])).content.decode()
    assert "Alerts (1 firing)" in page and "Firing:" in page and "Crash storm" in page


def test_members_see_receivers_masked_and_no_answer_text(client, alice, bob, project):
    """A Slack incoming-webhook URL is a credential, and a receiver's answer is its own: a
    member sees where a rule sends (scheme and host) and how each attempt went, no more."""
    secret = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    rule = rule_create(project=project, data=RuleIn(
        name="Storm", condition={"type": "new_issue"}, channels=[{"type": "slack", "url": secret}],
    ))  # fmt: skip
    firing = AlertFiring.objects.create(
        rule=rule, value=1, body={}, url="/", fired_at=timezone.now()
    )
    firing.deliveries.create(channel=rule.channels[0], status="failed", attempts=[
        {"at": "2026-12-05T10:00:00+00:00", "ok": False, "status": 500,
         "error": "<b>INTERNAL-TOKEN=abc</b>", "ms": 12}])  # fmt: skip
    url = reverse("alert-rule", args=[project.id, rule.id])

    client.force_login(bob)
    page = client.get(url).content.decode()
    assert "https://hooks.slack.com/…" in page and "XXXXsecretXXXX" not in page
    assert "(HTTP 500)" in page and "12 ms" in page and "INTERNAL-TOKEN" not in page

    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "hooks.slack.com/services/T000" in page
    assert "&lt;b&gt;INTERNAL-TOKEN=abc&lt;/b&gt;" in page  # an excerpt, escaped


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://169.254.169.254/latest",
                                 "http://user:pass@hooks.example.com/x"])  # fmt: skip
def test_an_internal_receiver_is_refused_on_the_form_with_its_reason(client, alice, project, url):
    client.force_login(alice)
    response = client.post(reverse("alert-rule-new", args=[project.id]),
                           {**FORM, "webhook_url": url})  # fmt: skip
    assert response.status_code == 422
    page = response.content.decode()
    assert "Webhook URL: the URL goes to" in page or "Webhook URL: the URL must not carry" in page
    assert not AlertRule.objects.exists()


def test_an_owner_creates_a_latency_rule_and_edits_it_with_its_own_fields(client, alice, project):
    client.force_login(alice)
    form = {**FORM, "type": "latency_p95", "stage": "tts", "threshold_ms": "450",
            "min_turns": "30", "window_minutes": "15"}  # fmt: skip
    response = client.post(reverse("alert-rule-new", args=[project.id]), form)
    rule = AlertRule.objects.get()
    assert response.status_code == 302
    assert rule.condition == {"type": "latency_p95", "stage": "tts", "threshold_ms": 450.0,
                              "window_seconds": 900, "min_turns": 30}  # fmt: skip
    assert rule.name == "TTS first byte p95 of 450 ms or more in 15 minutes (at least 30 turns)"
    edit = client.get(reverse("alert-rule", args=[project.id, rule.id])).content.decode()
    assert '<option value="tts" selected>' in edit and 'name="threshold_ms"' in edit
    assert 'value="450"' in edit and 'value="30"' in edit
