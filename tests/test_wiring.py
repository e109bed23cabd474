"""Each real part, proven end to end: Daphne HTTP, websockets over the Redis channel layer,
and a Celery task run by a real worker process that writes to PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from errorsink.models import Event
from errorsink.projects import group_name
from errorsink.tasks import events_prune

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


async def _receive_group_message(url: str, cookie: str, group: str, payload: dict) -> dict:
    headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await get_channel_layer().group_send(group, payload)
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            if message.get("type") == "events.stored":
                return message


def test_it_delivers_a_group_message_through_daphne_and_redis(live_server_url, project, alice):
    url = live_server_url.replace("http", "ws") + f"/ws/projects/{project.id}/"
    message = async_to_sync(_receive_group_message)(
        url,
        _session_cookie(alice),
        group_name(project.id),
        {"type": "events.stored", "events": [[7, "error"]]},
    )
    assert message == {"type": "events.stored", "events": [[7, "error"]]}


def test_it_runs_a_task_on_a_real_worker_that_writes_to_postgres(celery_worker, project):
    old = timezone.now() - timedelta(days=90)
    common = dict(project=project, session_id="s1", kind="error", code="RUNNER_INTERNAL",
                  source="runner", severity="high", item_type="session_error", raw={})  # fmt: skip
    Event.objects.create(event_id="old", occurred_at=old, received_at=old, **common)
    Event.objects.create(event_id="new", occurred_at=old, received_at=timezone.now(), **common)

    deleted = events_prune.delay(days=30).get(timeout=30)

    assert deleted == 1
    assert list(Event.objects.values_list("event_id", flat=True)) == ["new"]
