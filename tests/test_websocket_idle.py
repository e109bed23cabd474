"""A dashboard left open with nothing happening must stay subscribed: redis-py's default
socket timeout (5 s) equals channels-redis's blocking pop, which once dropped idle sockets."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from errorsink.live import EventsStored, group_name
from errorsink.sessions.models import Event
from tests.test_wiring import _session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def _push_after_idle(url: str, cookie: str, project, idle: float) -> str:
    headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await asyncio.wait_for(ws.recv(), timeout=10)  # the initial issues
        await asyncio.wait_for(ws.recv(), timeout=10)  # and table of errors
        await asyncio.sleep(idle)
        event = await sync_to_async(Event.objects.create)(
            project=project, event_id="late", session_id="s1", kind="error",
            code="RUNNER_INTERNAL", message="after a quiet spell", occurred_at=timezone.now(),
            received_at=timezone.now(), source="runner", severity="high",
            item_type="session_error", raw={},
        )  # fmt: skip
        await get_channel_layer().group_send(
            group_name(project.id), EventsStored.of([(event.pk, event.kind)]).encode()
        )
        return await asyncio.wait_for(ws.recv(), timeout=10)


@pytest.mark.slow
def test_it_still_pushes_to_a_websocket_idle_longer_than_the_redis_timeouts(
    live_server_url, project, alice
):
    url = live_server_url.replace("http", "ws") + f"/ws/projects/{project.id}/"
    push = async_to_sync(_push_after_idle)(url, _session_cookie(alice), project, idle=12)
    assert "after a quiet spell" in push
