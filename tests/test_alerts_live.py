"""Alerts end to end on the real stack (docs/alerts.md): errors pushed onto the Redis queue, a
real Celery worker and beat, a real HTTP receiver and a real SMTP server (aiosmtpd) on loopback.
A receiver that hangs or answers 500 is retried while another rule's delivery still arrives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from errorsink.alerts.models import DELIVERED, AlertDelivery, AlertFiring
from errorsink.alerts.rules import RuleIn, rule_create
from errorsink.ingest.queue import queue_name, redis_client

pytestmark = pytest.mark.django_db(transaction=True)
ARRIVAL_LIMIT = 10.0  # docs/alerts.md: within 10 seconds of the condition becoming true


class Receiver:
    """A loopback HTTP server whose paths answer 200, 500 or hang; records what reached it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, time.time(), orjson.loads(body)))
                if self.path == "/hang":
                    time.sleep(8)  # past the sender's 5 s timeout
                status = 500 if self.path == "/fail" else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[tuple[float, dict]]:
        return [(at, body) for p, at, body in self.received if p == path]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """On loopback: errorsink sends to it only because the operator allows it (here and in the
    worker the stack fixture starts)."""
    settings.ERRORSINK_WEBHOOK_ALLOW = "127.0.0.1"
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def stack(private_stack, mailbox, tmp_path) -> Iterator[None]:
    """A worker (ingest, evaluation, delivery) and beat, sending email to the loopback server."""
    settings = {"EMAIL_URL": f"smtp://127.0.0.1:{mailbox[1]}",
                "ERRORSINK_PUBLIC_URL": "http://errorsink.example",
                "ERRORSINK_STATE_DIR": str(tmp_path / "state"),
                "ERRORSINK_WEBHOOK_ALLOW": "127.0.0.1"}  # fmt: skip
    private_stack.worker(name="alerts", concurrency=4, **settings)
    private_stack.beat(ready="beat: Starting...", **settings)
    yield


def _rule(project, condition: dict, channels: list[dict], name: str):
    return rule_create(project=project, data=RuleIn(name=name, condition=condition,
                                                    channels=channels))  # fmt: skip


def _push_errors(project, count: int, code: str) -> float:
    items = [orjson.dumps({"type": "session_error", "project_id": str(project.id), "code": code,
                           "message": f"handler threw {n}", "session_id": f"call-{n}"})
             for n in range(count)]  # fmt: skip
    redis_client().lpush(queue_name(), *items)
    return time.time()


def _wait_for(condition, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_webhook_and_email_arrive_and_a_failing_receiver_delays_no_one(
    project, receiver, mailbox, stack
):
    redis_client().delete(queue_name())
    good = _rule(project, {"type": "event_count", "threshold": 2, "window_seconds": 300,
                           "code": "AGENT_HANDLER_FAILED"},
                 [{"type": "webhook", "url": f"{receiver.url}/good"},
                  {"type": "email", "to": ["oncall@example.com"]}], "good")  # fmt: skip
    _rule(project, {"type": "event_count", "threshold": 2, "window_seconds": 300},
          [{"type": "webhook", "url": f"{receiver.url}/hang"},
           {"type": "webhook", "url": f"{receiver.url}/fail"}], "bad")  # fmt: skip

    pushed = _push_errors(project, 3, "AGENT_HANDLER_FAILED")

    (arrived, body), *_ = _wait_for(lambda: receiver.on("/good"))
    assert arrived - pushed < ARRIVAL_LIMIT
    assert body["rule"]["name"] == "good" and body["value"] == 3 and body["threshold"] == 2
    assert body["project"] == {"id": str(project.id), "name": project.name}
    assert (
        body["url"] == f"http://errorsink.example/projects/{project.id}/?code=AGENT_HANDLER_FAILED"
    )
    assert {event["code"] for event in body["sample"]} == {"AGENT_HANDLER_FAILED"}
    recipients, message = _wait_for(lambda: mailbox[0].messages)[0]
    assert recipients == ["oncall@example.com"]
    assert "More than 2 AGENT_HANDLER_FAILED errors in 5 minutes" in message["Subject"]
    # The failing receiver is tried again (back-off 2 s, then 4 s) and each attempt recorded.
    _wait_for(lambda: len(receiver.on("/fail")) >= 3)
    failing = AlertDelivery.objects.get(channel__url=f"{receiver.url}/fail")
    _wait_for(lambda: len(AlertDelivery.objects.get(id=failing.id).attempts) >= 3)
    attempts = AlertDelivery.objects.get(id=failing.id).attempts
    assert [a["status"] for a in attempts[:3]] == [500, 500, 500]
    hanging = _wait_for(lambda: AlertDelivery.objects.get(channel__url=f"{receiver.url}/hang")
                        .attempts)  # fmt: skip
    assert hanging[0]["ok"] is False and "no answer" in hanging[0]["error"]
    assert AlertFiring.objects.filter(rule=good).count() == 1  # once per cooldown
    assert set(AlertDelivery.objects.filter(firing__rule=good).values_list("status", flat=True)) \
        == {DELIVERED}  # fmt: skip
