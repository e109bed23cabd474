"""Coalesced notifications through the real Redis channel layer."""

from __future__ import annotations

import asyncio
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from errorsink.ingest.notify import INTERVAL, Notifier, newest_per_kind
from errorsink.live import EventsStored, group_name


def _ids(message: dict) -> list[int]:
    return [event.pk for event in EventsStored.decode(message).events]


async def _collect(project_id: uuid.UUID, notifier: Notifier, produce, last: int) -> list[dict]:
    """The messages of what `produce` adds, up to the one carrying id `last`; then the message
    of one more event added after that, which must come next and alone."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(project_id), channel)
    try:
        await asyncio.to_thread(produce)
        messages = [await asyncio.wait_for(layer.receive(channel), timeout=10)]
        while last not in _ids(messages[-1]):  # messages keep the order of the events
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=10))
        notifier.add({project_id: [(last + 1, "info")]})
        after = await asyncio.wait_for(layer.receive(channel), timeout=10)
        assert _ids(after) == [last + 1]  # nothing more came of the burst
    finally:
        await layer.group_discard(group_name(project_id), channel)
    return messages


def test_it_coalesces_a_burst_into_a_few_messages_carrying_every_id():
    project_id = uuid.uuid4()
    notifier = Notifier()
    notifier.start()

    took = []

    def burst() -> None:
        started = time.perf_counter()
        for batch in range(200):  # 200 committed batches in about half a second
            notifier.add({project_id: [(batch * 2, "error"), (batch * 2 + 1, "warning")]})
            time.sleep(0.0025)
        took.append(time.perf_counter() - started)

    try:
        messages = async_to_sync(_collect)(project_id, notifier, burst, last=399)
    finally:
        notifier.stop()

    # At most one message per interval (and the first at once), far fewer than the batches.
    assert 1 <= len(messages) <= took[0] / INTERVAL + 2, (len(messages), took)
    assert len(messages) <= 200 / 3
    ids = sorted(pk for message in messages for pk in _ids(message))
    assert ids == list(range(400))
    assert all(message["type"] == "events.stored" for message in messages)


def test_it_keeps_the_newest_of_each_kind_so_warnings_never_crowd_out_errors():
    events = [(n, "error") for n in range(3)] + [(n, "warning") for n in range(3, 10)]
    assert newest_per_kind(events, 2) == [
        (1, "error"),
        (2, "error"),
        (8, "warning"),
        (9, "warning"),
    ]
