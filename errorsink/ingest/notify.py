"""Coalesced live notifications: at most one message per project per interval.

Each stored batch's events are sent on this thread, so ingest never waits for Redis. Under
steady load the readers' pace already makes one batch per 50 ms (errorsink/ingest/queue.py), and
each goes out at once; what arrives within ``INTERVAL`` of the last message (several readers
working through a backlog) is merged into the next one. An event after a quiet spell goes at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.layers import get_channel_layer

from errorsink.ingest.queue import TAKE_EVERY_SECONDS
from errorsink.live import events_stored_message, group_name

log = logging.getLogger("errorsink.ingest")

# Half the readers' pace: a paced batch's notice always finds the notifier ready and goes at
# once, while readers catching up on a backlog, whose batches are not paced, still send at most
# one message per interval. At 50 ms, the same as the pace, the two
# drifted apart and a batch's notice waited 22 ms on average (docs/benchmarks.md).
INTERVAL = TAKE_EVERY_SECONDS / 2
# A bound on message size, per kind so that a flood of warnings can never crowd the errors out.
# At 40 messages a second it only bites above 200,000 events/s of one kind for one project,
# beyond what one worker stores; the dashboard re-syncs from the database on reconnect anyway.
MAX_IDS_PER_KIND = 5000


class Notifier:
    def __init__(self) -> None:
        self._pending: dict[object, list[tuple]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def add(self, stored: dict) -> None:
        with self._lock:
            for project_id, events in stored.items():
                self._pending.setdefault(project_id, []).extend(events)
        self._wake.set()

    def _run(self) -> None:
        # One event loop for the thread's life: async_to_sync per message would build and tear
        # down a loop and a thread each time, which costs more than the send itself.
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        layer = get_channel_layer()
        while not self._stopping.is_set():
            await asyncio.to_thread(self._wake.wait)
            self._wake.clear()
            await self.flush(layer)
            # Whatever arrives in the next interval waits for one combined message.
            await asyncio.sleep(INTERVAL)
        await self.flush(layer)

    async def flush(self, layer) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for project_id, events in pending.items():
            message = events_stored_message(newest_per_kind(events, MAX_IDS_PER_KIND))
            try:
                await layer.group_send(group_name(project_id), message)
            except Exception:  # a dashboard hint must never stop ingest
                log.exception("could not notify dashboards of project %s", project_id)


def newest_per_kind(events: list[tuple], limit: int) -> list[tuple]:
    """The newest `limit` events of each kind, in their original order."""
    if len(events) <= limit:  # every kind is within the limit: the common case, no loop
        return events
    kept, counts = [], {}
    for event in reversed(events):
        if counts.get(event[1], 0) < limit:
            counts[event[1]] = counts.get(event[1], 0) + 1
            kept.append(event)
    return kept[::-1]
