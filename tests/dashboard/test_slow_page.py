"""A page whose browser stops reading, through a real Daphne: the others keep getting every
push, the server stops piling pushes up for it, and once it reads again it is redrawn whole."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
import websockets
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from errorsink.live import EventsStored, group_name
from errorsink.sessions.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

BACKLOG_BYTES = 16 * 1024  # the smallest the setting allows: the test stalls a page quickly
ROUNDS = 40
PER_ROUND = 20  # a push of 20 rows of about 2.5 KB each
SYNC = '<tbody id="error-rows" hx-swap-oob="true">'


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _events(project, round_number: int) -> list[tuple[int, str]]:
    now = timezone.now()
    rows = Event.objects.bulk_create(
        Event(project=project, event_id=f"slow-{round_number}-{n}", session_id="slow-page",
              kind=Event.ERROR, code="AGENT_CHILD_CRASHED", message="x" * 2000,
              occurred_at=now, received_at=now, source="agent", severity="high",
              item_type="session_error", raw={})
        for n in range(PER_ROUND)
    )  # fmt: skip
    return [(row.pk, row.kind) for row in rows]


def _row_ids(text: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="event-(\d+)"', text)]


class Reader:
    """A page that reads everything: the row ids it was shown and the bytes it got."""

    def __init__(self, ws) -> None:
        self.ws, self.ids, self.bytes = ws, set(), 0

    async def run(self) -> None:
        async for message in self.ws:
            self.bytes += len(message)
            self.ids.update(_row_ids(message))


async def _open(url: str, headers: dict, **options):
    ws = await websockets.connect(url, additional_headers=headers, max_size=None, **options)
    for _ in range(2):  # the issue table and quality panel, then the error rows
        await asyncio.wait_for(ws.recv(), timeout=10)
    return ws


def _stats(log: str) -> dict[str, int]:
    found = re.findall(r"live stats ((?:\w+=\d+ ?)+)", log)
    return {k: int(v) for k, v in (pair.split("=") for pair in found[-1].split())} if found else {}


def test_a_page_that_stops_reading_is_left_behind_then_redrawn(private_stack, project, alice):
    web = private_stack.web(ERRORSINK_LIVE_BACKLOG_BYTES=str(BACKLOG_BYTES),
                            ERRORSINK_LIVE_STATS_SECONDS="1")  # fmt: skip
    url = f"ws://127.0.0.1:{web.port}/ws/projects/{project.id}/"
    headers = {"Cookie": f"sessionid={_session_cookie(alice)}", "Origin": web.url}

    async def body() -> tuple[list[Reader], int, str, int]:
        readers = [Reader(await _open(url, headers)) for _ in range(3)]
        # A browser tab that stops reading: a small receive buffer, and nothing read from now on.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", web.port))
        slow = await _open(url, headers, sock=sock, max_queue=1)
        tasks = [asyncio.create_task(reader.run()) for reader in readers]
        layer, newest = get_channel_layer(), 0
        for round_number in range(ROUNDS):
            stored = await sync_to_async(_events)(project, round_number)
            newest = stored[-1][0]
            await layer.group_send(group_name(project.id), EventsStored.of(stored).encode())
            await asyncio.sleep(0.1)
        for _ in range(100):  # every reading page is shown the newest row
            if all(newest in reader.ids for reader in readers):
                break
            await asyncio.sleep(0.1)
        # Reading again: what was queued for it before it fell behind, then the whole view.
        stalled_bytes, resync = 0, ""
        while not resync:
            message = await asyncio.wait_for(slow.recv(), timeout=15)
            if message.startswith(SYNC):
                resync = message
            else:
                stalled_bytes += len(message)
        for ws in [slow, *(reader.ws for reader in readers)]:
            await ws.close()
        await asyncio.gather(*tasks)
        return readers, newest, resync, stalled_bytes

    readers, newest, resync, stalled_bytes = async_to_sync(body)()

    assert all(newest in reader.ids for reader in readers)  # the others missed nothing
    assert _row_ids(resync)[0] == newest  # redrawn from the database, newest on top
    # What the server held for the slow page stayed near the limit plus the kernel's buffers,
    # a fraction of what the reading pages were sent meanwhile (about 2 MB each).
    assert min(reader.bytes for reader in readers) > 1_500_000
    assert stalled_bytes < 600_000, stalled_bytes
    stats = {}
    for _ in range(30):
        stats = _stats(private_stack.log_text(web.proc))
        if stats.get("resyncs"):
            break
        async_to_sync(asyncio.sleep)(0.2)
    assert stats["resyncs"] == 1 and stats["skipped"] > 0, stats
