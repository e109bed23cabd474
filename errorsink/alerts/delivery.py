"""Deliver one channel of one alert firing: a JSON POST, a Slack message or an email.

Each attempt is short (a few seconds at most, redirects not followed) and recorded on the
delivery; a failed one is retried by the Celery task with back-off (errorsink/tasks.py). A slow
receiver therefore holds one worker thread for at most ATTEMPT_TIMEOUT, never other deliveries
or ingest, which run on their own threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from errorsink.alerts.models import DELIVERED, FAILED, RETRYING, AlertDelivery
from errorsink.alerts.outbound import AddressRefused, CheckedTransport, url_problem

ATTEMPT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_ATTEMPTS = 5
ERROR_TEXT_MAX = 300
# Of a receiver's answer, only this much is kept (and shown to owners alone): enough to read
# an error message, too little to carry a page of whatever the receiver returns.
BODY_EXCERPT_MAX = 100


@dataclass
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""
    final: bool = False  # no retry can help (an address errorsink refuses)


def retry_delay(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: 2, 4, 8, 16."""
    return 2**attempt


def delivery_attempt(delivery_id: int) -> str:
    """Make one attempt and record it; returns the delivery's status after it."""
    delivery = AlertDelivery.objects.select_related("firing__rule__project").get(id=delivery_id)
    if delivery.status in (DELIVERED, FAILED):
        return delivery.status  # a task run twice (a redelivered message) sends nothing twice
    started = time.monotonic()
    outcome = _send(delivery.channel, delivery.firing.body)
    took_ms = round((time.monotonic() - started) * 1000)
    with transaction.atomic():
        delivery = AlertDelivery.objects.select_for_update().get(id=delivery_id)
        delivery.attempts = [*delivery.attempts, {
            "at": timezone.now().isoformat(), "ok": outcome.ok, "status": outcome.status,
            "error": outcome.error[:ERROR_TEXT_MAX], "ms": took_ms,
        }]  # fmt: skip
        if outcome.ok:
            delivery.status, delivery.delivered_at = DELIVERED, timezone.now()
        elif outcome.final or len(delivery.attempts) >= MAX_ATTEMPTS:
            delivery.status = FAILED
        else:
            delivery.status = RETRYING
        delivery.save(update_fields=["attempts", "status", "delivered_at"])
    return delivery.status


def _send(channel: dict, body: dict) -> Outcome:
    kind = channel["type"]
    if kind == "email":
        return _email(channel["to"], body)
    payload = slack_message(body) if kind == "slack" else body
    return _post(channel["url"], payload)


def _post(url: str, payload: dict) -> Outcome:
    problem = url_problem(url)  # a rule saved before the check, or an allowance since removed
    if problem is not None:
        return Outcome(False, error=f"not sent: the URL {problem}", final=True)
    try:
        with httpx.Client(transport=CheckedTransport(), timeout=ATTEMPT_TIMEOUT,
                          follow_redirects=False) as client:  # fmt: skip
            response = client.post(url, json=payload, headers={"User-Agent": "errorsink-alerts"})
    except AddressRefused as exc:
        return Outcome(False, error=f"not sent: {exc}", final=True)
    except httpx.TimeoutException:
        return Outcome(False, error=f"no answer within {ATTEMPT_TIMEOUT.read:.0f} s")
    except httpx.HTTPError as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    if response.is_redirect:
        return Outcome(False, response.status_code, "redirect not followed: "
                       f"{response.headers.get('location', '')}")  # fmt: skip
    if not response.is_success:
        return Outcome(False, response.status_code, response.text[:BODY_EXCERPT_MAX])
    return Outcome(True, response.status_code)


def _email(to: list[str], body: dict) -> Outcome:
    try:
        send_mail(email_subject(body), email_text(body), settings.DEFAULT_FROM_EMAIL, to)
    except Exception as exc:  # noqa: BLE001 - any failure of the mail backend is a failed attempt
        return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    return Outcome(True)


def _headline(body: dict) -> str:
    prefix = "[test] " if body.get("test") else ""
    return f"{prefix}{body['project']['name']}: {body['rule']['description']}"


def _value_text(body: dict) -> str:
    value = body["value"]
    condition = body["rule"]["condition"]
    if condition["type"] == "degraded_share":
        return f"{value:.0%} of sessions degraded"
    if condition["type"] == "latency_p95":
        return f"p95 {value:,.0f} ms (threshold {body['threshold']:,.0f} ms)"
    return f"value {value:g}" + (f" (threshold {body['threshold']:g})"
                                 if body["threshold"] is not None else "")  # fmt: skip


def slack_message(body: dict) -> dict:
    """Slack's incoming-webhook format: text, with the link in Slack's own markup."""
    lines = [f"*{_escape_slack(_headline(body))}*", _value_text(body),
             f"<{body['url']}|Open in errorsink>"]  # fmt: skip
    for event in body["sample"][:3]:
        lines.append(f"• `{_escape_slack(event['code'])}` {_escape_slack(event['message'][:120])}")
    return {"text": "\n".join(lines)}


def _escape_slack(text: str) -> str:
    # Slack reads &, < and > as markup: user text must not make links or mentions.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_subject(body: dict) -> str:
    return f"[errorsink] {_headline(body)}"[:200]


def email_text(body: dict) -> str:
    lines = [_headline(body), _value_text(body), f"Fired at {body['fired_at']}", "",
             f"Open in errorsink: {body['url']}", ""]  # fmt: skip
    for event in body["sample"]:
        lines.append(f"- {event['code']}: {event['message'][:200]} "
                     f"(session {event['session_id'] or '-'})")  # fmt: skip
    return "\n".join(lines)
