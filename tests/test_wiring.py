"""Each real part, proven end to end: Daphne HTTP, websockets over the Redis channel layer,
and a Celery task run by a real worker process that writes to PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from errorsink.live import EventsStored, group_name
from errorsink.sessions.models import Event, Session
from errorsink.tasks import events_prune
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_serves_the_sign_in_page_and_static_files_over_daphne(live_server_url):
    page = httpx.get(f"{live_server_url}/login/")
    assert page.status_code == 200
    assert "Sign in" in page.text
    css = httpx.get(f"{live_server_url}/static/errorsink/app.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _push_through_daphne(url: str, cookie: str, project) -> tuple[str, str, int]:
    """Connect like the browser does, then announce a stored event on the project's group."""
    headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        issues = await asyncio.wait_for(ws.recv(), timeout=10)
        assert issues.startswith('<section id="issue-table"')
        sync = await asyncio.wait_for(ws.recv(), timeout=10)
        event = await sync_to_async(Event.objects.create)(
            project=project, event_id="wired", session_id="s1", kind="error",
            code="RUNNER_INTERNAL", message="through the channel layer",
            occurred_at=timezone.now(), received_at=timezone.now(), source="runner",
            severity="high", item_type="session_error", raw={},
        )  # fmt: skip
        await get_channel_layer().group_send(
            group_name(project.id), EventsStored.of([(event.pk, event.kind)]).encode()
        )
        push = await asyncio.wait_for(ws.recv(), timeout=10)
        return sync, push, event.pk


def test_it_delivers_a_group_message_through_daphne_and_redis(live_server_url, project, alice):
    url = live_server_url.replace("http", "ws") + f"/ws/projects/{project.id}/"
    sync, push, pk = async_to_sync(_push_through_daphne)(url, _session_cookie(alice), project)
    # On connect the whole table (empty here) replaces the page's; then the new row goes on top.
    assert sync.startswith('<tbody id="error-rows" hx-swap-oob="true">')
    assert push.startswith('<tbody hx-swap-oob="afterbegin:#error-rows">')
    assert f'<tr id="event-{pk}"' in push and "through the channel layer" in push


def test_it_runs_a_task_on_a_real_worker_that_writes_to_postgres(celery_worker, project):
    old = timezone.now() - timedelta(days=90)
    common = dict(project=project, session_id="s1", kind="error", code="RUNNER_INTERNAL",
                  source="runner", severity="high", item_type="session_error", raw={})  # fmt: skip
    Event.objects.create(event_id="old", occurred_at=old, received_at=old, **common)
    Event.objects.create(event_id="old-2", occurred_at=old, received_at=old,
                         **{**common, "session_id": "gone"})  # fmt: skip
    now = timezone.now()
    Event.objects.create(event_id="new", occurred_at=now, received_at=now, **common)
    Session.objects.create(project=project, session_id="s1", first_seen=old, last_seen=now)
    Session.objects.create(project=project, session_id="gone", first_seen=old, last_seen=old)
    roll_up()  # only events the rollups have counted are pruned

    pruned = events_prune.delay().get(timeout=30)

    assert (pruned["events"], pruned["sessions"]) == (2, 1)
    assert list(Event.objects.values_list("event_id", flat=True)) == ["new"]
    # A session keeps its row while it has events; an emptied one goes with them.
    assert list(Session.objects.values_list("session_id", flat=True)) == ["s1"]


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"GET /?q=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_an_over_long_request_line_or_header_gets_a_status_not_a_reset(
    live_server_url, request_head, status
):
    port = int(live_server_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_head)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 " + status + (
        b" URI Too Long" if status == b"414" else b" Request Header Fields Too Large"
    )
