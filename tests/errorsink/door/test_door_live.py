"""Two Daphne processes under load: an API key revoked and a DSN rotated mid-stream are refused
by both from the change on (the door's copy of the grants follows the version in Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
from django.db import connection

from errorsink.ingest.queue import queue_name, redis_client
from errorsink.projects.api_keys import api_key_create, api_key_revoke
from errorsink.sentry.keys import sentry_key_for, sentry_key_rotate
from tests.http_load import Connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RATE = 1000  # requests a second, across both processes
SECONDS = 4.0
CHANGE_AT = 1.5  # seconds into the run
SENDERS = 16


async def _load(urls: list[tuple[str, dict, str]], change) -> tuple[float, list[tuple]]:
    """When ``change`` (run in a thread at CHANGE_AT) had finished, and (sent, answered, url,
    status) of each request, in seconds since the start, paced to RATE."""
    results: list[tuple] = []
    started = time.monotonic()
    changed_at: list[float] = []

    async def sender(number: int) -> None:
        connections = {url: Connection(url) for url, _, _ in urls}
        sent = number
        try:
            while (due := started + sent / RATE) < started + SECONDS:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                url, headers, kind = urls[sent % len(urls)]
                at = time.monotonic() - started
                path = url.split("/", 3)[3]
                status = await connections[url].post(f"/{path}", _body(kind), headers)
                results.append((at, time.monotonic() - started, url, status))
                sent += SENDERS
        finally:
            for connection in connections.values():
                connection.close()

    async def changer() -> None:
        await asyncio.sleep(CHANGE_AT)
        await asyncio.to_thread(_closing, change)
        changed_at.append(time.monotonic() - started)

    await asyncio.gather(changer(), *(sender(n) for n in range(SENDERS)))
    return changed_at[0], results


def _closing(change) -> None:
    """Run ``change`` in this thread, then close the database connection it opened here: one
    left open keeps the test database from being dropped at the end of the run."""
    try:
        change()
    finally:
        connection.close()


def _body(kind: str) -> bytes:
    event_id = uuid.uuid4().hex
    if kind == "api":
        return orjson.dumps({"type": "session_error", "code": "AGENT_HANDLER_FAILED",
                             "message": "revocation run", "session_id": "door-live",
                             "event_id": event_id})  # fmt: skip
    event = orjson.dumps({"event_id": event_id, "message": "rotation run", "level": "error"})
    return b'{}\n{"type": "event"}\n' + event + b"\n"


def test_revocation_and_rotation_reach_every_process_under_load(project, live_stack):
    webs = [live_stack.web(), live_stack.web()]
    key, plaintext = api_key_create(project=project, scopes="errors:write")
    dsn = sentry_key_for(project)
    urls = []
    for web in webs:
        urls.append(
            (
                f"{web.url}/api/v1/projects/{project.id}/events",
                {"Authorization": f"Bearer {plaintext}"},
                "api",
            )
        )
        urls.append((f"{web.url}/api/{dsn.id}/envelope/?sentry_key={dsn.public_key}", {},
                     "sentry"))  # fmt: skip

    def change() -> None:
        api_key_revoke(key=key)
        sentry_key_rotate(project)

    try:
        changed, results = asyncio.run(_load(urls, change))
    finally:
        for web in webs:
            live_stack.stop(web.proc)
        redis_client().delete(queue_name())
    before = [r for r in results if r[1] < CHANGE_AT]  # answered before the change began
    after = [r for r in results if r[0] > changed]  # sent once it had committed
    assert before and all(status in (200, 202) for *_, status in before)
    # Refused from the change on, by both processes, for both kinds of key.
    assert len({url for _, _, url, _ in after}) == 4
    assert all(status in (401, 403) for *_, status in after), [
        r for r in after if r[3] not in (401, 403)][:5]  # fmt: skip
