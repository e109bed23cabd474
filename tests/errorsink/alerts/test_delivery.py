"""One delivery attempt against a real HTTP server on loopback: what each channel sends, what is
recorded, redirects not followed, and nothing sent twice."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from dashboard.links import ReversedLinks
from errorsink.alerts.delivery import MAX_ATTEMPTS, delivery_attempt, slack_message
from errorsink.alerts.evaluate import firing_record
from errorsink.alerts.models import DELIVERED, FAILED, RETRYING, AlertDelivery
from errorsink.alerts.rules import RuleIn, rule_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda pk: None)


def _delivery(project, channel: dict) -> AlertDelivery:
    rule = rule_create(project=project, data=RuleIn(
        name="Crashes <@channel> & co",
        condition={"type": "event_count", "threshold": 3, "window_seconds": 60},
        channels=[channel],
    ))  # fmt: skip
    firing, _ = firing_record(rule, value=4, sample=[], now=timezone.now(), links=ReversedLinks())
    return AlertDelivery.objects.get(firing=firing)


def test_a_webhook_gets_the_body_and_the_attempt_is_recorded(project, receiver):
    url, received = receiver
    delivery = _delivery(project, {"type": "webhook", "url": f"{url}/hook"})
    assert delivery_attempt(delivery.id) == DELIVERED
    ((path, body),) = received
    assert path == "/hook" and body["value"] == 4 and body["threshold"] == 3
    assert set(body) == {"rule", "project", "fired_at", "value", "threshold", "url", "sample",
                         "test"}  # fmt: skip
    delivery.refresh_from_db()
    assert delivery.attempts[0]["ok"] is True and delivery.attempts[0]["status"] == 200
    assert delivery_attempt(delivery.id) == DELIVERED and len(received) == 1  # not sent twice


def test_a_redirect_is_not_followed_and_fails_the_attempt(project, receiver):
    url, received = receiver
    delivery = _delivery(project, {"type": "webhook", "url": f"{url}/moved"})
    assert delivery_attempt(delivery.id) == RETRYING
    assert [path for path, _ in received] == ["/moved"]
    attempt = AlertDelivery.objects.get(id=delivery.id).attempts[0]
    assert attempt["status"] == 302 and "redirect not followed" in attempt["error"]


def test_a_failing_receiver_is_given_up_after_the_last_attempt(project, receiver):
    url, _ = receiver
    delivery = _delivery(project, {"type": "webhook", "url": f"{url}/fail"})
    statuses = [delivery_attempt(delivery.id) for _ in range(MAX_ATTEMPTS)]
    assert statuses == [RETRYING] * (MAX_ATTEMPTS - 1) + [FAILED]
    assert [a["status"] for a in AlertDelivery.objects.get(id=delivery.id).attempts] == \
        [500] * MAX_ATTEMPTS  # fmt: skip


def test_slack_gets_text_with_user_text_escaped_from_its_markup(project, receiver):
    url, received = receiver
    delivery = _delivery(project, {"type": "slack", "url": f"{url}/slack"})
    delivery_attempt(delivery.id)
    ((_, message),) = received
    assert set(message) == {"text"}
    assert "More than 3 errors in 1 minute" in message["text"]
    assert f"<{delivery.firing.url}|Open in errorsink>" in message["text"]
    escaped = slack_message(
        {
            **delivery.firing.body,
            "sample": [
                {"code": "X", "message": "<!here> & <https://evil|click>", "session_id": "s"}
            ],
        }
    )
    assert "&lt;!here&gt; &amp; &lt;https://evil|click&gt;" in escaped["text"]


def test_email_goes_through_djangos_mailer(project, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    delivery = _delivery(project, {"type": "email", "to": ["oncall@example.com"]})
    assert delivery_attempt(delivery.id) == DELIVERED
    (message,) = mail.outbox
    assert message.to == ["oncall@example.com"]
    assert message.subject == "[errorsink] Voice bot: More than 3 errors in 1 minute"
    assert delivery.firing.url in message.body
