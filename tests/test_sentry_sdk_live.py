"""The real sentry-sdk, unmodified, against the running stack (docs/sentry.md): an agent
process calls ``sentry_sdk.init(dsn)``, captures an exception from a function (with a
``session_id`` tag and a ``release``), a message, a transaction and one event twice, then
flushes. Its requests pass a loopback forwarder that records how each was encoded (br when the
``brotli`` package is importable, gzip when not). The errors are then read back from the API and
seen in Chromium on the project page and in the session's timeline beside its warning."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest
from playwright.sync_api import expect

from errorsink.ingest.queue import enqueue
from errorsink.projects.api_keys import api_key_create
from errorsink.sentry.keys import sentry_dsn, sentry_key_for
from errorsink.sessions.models import Event
from tests.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AGENT = r"""
import json, sys
if sys.argv[3] == "without-brotli":
    sys.modules["brotli"] = None  # as if the package were not installed
import sentry_sdk

dsn, session_id = sys.argv[1], sys.argv[2]
sentry_sdk.init(dsn=dsn, release="agent@2.0.1", traces_sample_rate=1.0)
sentry_sdk.set_tag("session_id", session_id)

def lookup_order(orders):
    return orders["order_id"]

ids = {}
try:
    lookup_order({})
except KeyError:
    ids["exception"] = sentry_sdk.capture_exception()
ids["message"] = sentry_sdk.capture_message("caller hung up before the tool answered")
with sentry_sdk.start_transaction(name="voice-call", op="call"):
    pass
twice = {"event_id": sys.argv[4], "message": "sent twice", "level": "warning",
         "tags": {"session_id": session_id}}
sentry_sdk.capture_event(dict(twice))
sentry_sdk.capture_event(dict(twice))
ids["twice"] = sys.argv[4]
sentry_sdk.flush(timeout=10)
print(json.dumps(ids))
"""


class Forwarder:
    """Loopback HTTP that passes each request to Daphne and records its path and encoding."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[str, str, int]] = []
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.post(target + self.path, content=body, headers=headers)
                encoding = self.headers.get("Content-Encoding", "")
                forwarder.seen.append((self.path.split("?")[0], encoding, answer.status_code))
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def forwarder(live_server_url) -> Iterator[Forwarder]:
    forwarder = Forwarder(live_server_url)
    yield forwarder
    forwarder.server.shutdown()


def _run_agent(dsn: str, session_id: str, mode: str, twice_id: str) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", AGENT, dsn, session_id, mode, twice_id],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _stored(project, event_ids: list[str], timeout: float = 30.0) -> dict[str, Event]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {e.event_id: e for e in Event.objects.filter(project=project,
                                                               event_id__in=event_ids)}  # fmt: skip
        if len(found) == len(event_ids):
            return found
        time.sleep(0.2)
    raise AssertionError(f"stored {sorted(found)} of {sorted(event_ids)}")


@pytest.mark.parametrize(("mode", "encoding"), [("with-brotli", "br"), ("without-brotli", "gzip")])
def test_a_sentry_sdk_agents_errors_land_in_their_session(
    project, celery_worker, live_server_url, forwarder, browser, mode, encoding
):
    session_id = f"call-{uuid.uuid4().hex[:8]}"
    warning = {"type": "session_warning", "code": 31003, "session_id": session_id,
               "project_id": str(project.id), "event_id": f"w-{session_id}"}  # fmt: skip
    enqueue([json.dumps(warning)])
    dsn = sentry_dsn(sentry_key_for(project), forwarder.url)
    ids = _run_agent(dsn, session_id, mode, uuid.uuid4().hex)
    stored = _stored(project, [ids["exception"], ids["message"], ids["twice"], f"w-{session_id}"])

    error = stored[ids["exception"]]
    assert (error.code, error.message, error.session_id) == ("KeyError", "'order_id'", session_id)
    assert error.build_id == "agent@2.0.1" and error.recoverable is True  # caught, so handled
    assert [f["function"] for f in error.details["frames"] if f["in_app"]][-1] == "lookup_order"
    message = stored[ids["message"]]
    assert (message.code, message.message) == ("INFO", "caller hung up before the tool answered")

    posts = [seen for seen in forwarder.seen if seen[0].endswith("/envelope/")]
    # Exception, message, transaction, the event twice: five envelopes, each compressed.
    assert len(posts) == 5 and {(enc, status) for _, enc, status in posts} == {(encoding, 200)}
    # The queue is first in, first out: once an item pushed after both copies is stored, the
    # second copy has been handled too, stored or (rightly) skipped.
    after = {**warning, "event_id": f"after-{session_id}"}
    enqueue([json.dumps(after)])
    _stored(project, [after["event_id"]])
    errors = Event.objects.filter(project=project, session_id=session_id, kind=Event.ERROR)
    assert errors.count() == 3  # the transaction skipped, the event sent twice stored once

    _, plaintext = api_key_create(project=project, scopes="errors:read")
    listed = httpx.get(f"{live_server_url}/api/v1/projects/{project.id}/sessions/{session_id}"
                       "/errors", headers={"Authorization": f"Bearer {plaintext}"})  # fmt: skip
    assert listed.status_code == 200
    assert sorted(e["code"] for e in listed.json()["errors"]) == ["INFO", "KeyError", "WARNING"]
    if encoding == "br":  # the browser's view once is enough
        _seen_in_chromium(browser, live_server_url, project, session_id)


def _seen_in_chromium(browser, base: str, project, session_id: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/projects/{project.id}/")
    rows = page.locator("#error-table tbody tr")
    expect(rows.filter(has_text="KeyError").first).to_be_visible()
    expect(rows.filter(has_text="caller hung up before the tool answered").first).to_be_visible()
    screenshot(page, "sentry-project-page")
    page.goto(f"{base}/projects/{project.id}/sessions/{session_id}/")
    timeline = page.locator("#timeline-rows > li")
    expect(timeline.filter(has_text="31003").first).to_be_visible()  # its warning, beside
    crash = timeline.filter(has_text="KeyError").first
    crash.locator("details.stack > summary").click()
    expect(crash.locator(".frame.in-app").first).to_contain_text("lookup_order")
    screenshot(page, "sentry-timeline")
    context.close()


def _hostile_envelopes(valid: list[bytes]) -> list[tuple[str, bytes, str, int]]:
    """(what, body, Content-Encoding, expected status); ``valid`` are event payloads."""
    import gzip

    header = b'{"sent_at": "2026-12-03T10:00:00Z"}\n'

    def item(payload: bytes, kind: str = "event") -> bytes:
        return orjson.dumps({"type": kind, "length": len(payload)}) + b"\n" + payload + b"\n"

    whole = header + item(valid[0])
    many = header + b"".join(item(p) for p in valid[1:5001])
    many += b"".join(item(b"{}", "client_report") for _ in range(5000))
    return [
        ("truncated gzip", gzip.compress(whole)[:-20], "gzip", 400),
        ("a length past the end", whole[:-5], "", 400),
        (
            "wrong length, then more",
            header + item(valid[5001]) + b'{"type":"event","length":7}\n' + valid[5002],
            "",
            400,
        ),  # fmt: skip
        (
            "invalid UTF-8 beside a good event",
            header + item(b'{"m": "\xff\xfe\xfd"}') + item(valid[5003]),
            "",
            200,
        ),  # fmt: skip
        ("a gzip bomb", gzip.compress(b"\0" * (64 * 1024 * 1024)), "gzip", 413),
        ("10,000 items", gzip.compress(many), "gzip", 200),
        ("not an envelope", b"\x00\x01binary junk", "", 400),
    ]


def test_hostile_envelopes_get_their_answers_and_the_worker_keeps_storing(
    project, celery_worker, live_server_url
):
    project.ingest_quota = 0  # 5,000 events in one envelope: the framing is on trial, not the quota
    project.save()
    key = sentry_key_for(project)
    url = f"{live_server_url}/api/{key.id}/envelope/?sentry_key={key.public_key}"
    ids = [uuid.uuid4().hex for _ in range(5004)]
    valid = [orjson.dumps({"event_id": event_id, "message": f"hostile run {n}", "level": "error",
                           "tags": {"session_id": "hostile"}})
             for n, event_id in enumerate(ids)]  # fmt: skip
    answers = {}
    for what, body, encoding, expected in _hostile_envelopes(valid):
        headers = {"Content-Encoding": encoding} if encoding else {}
        response = httpx.post(url, content=body, headers=headers, timeout=60)
        answers[what] = (response.status_code, response.json().get("detail", ""))
        assert response.status_code == expected, (what, response.text)
    assert "before it were accepted" in answers["wrong length, then more"][1]
    # Stored: every valid event that came whole (1 + 5,000 + the one beside the bad UTF-8 + the
    # one before the wrong length); the worker never stopped.
    expected_ids = [ids[n] for n in (*range(1, 5001), 5001, 5003)]
    stored = _stored(project, expected_ids, timeout=60)
    assert len(stored) == 5002 and celery_worker.poll() is None
