"""One channel-layer subscription per project per Daphne process, fanned out in memory.

With channels_redis every message received costs four sequential Redis round trips, all behind
one per-process lock. If each of 50 open pages joined the project's group itself, one
notification would be 50 messages and 200 round trips, and at 20 notifications a second the
queue behind that lock alone would add hundreds of milliseconds. Here the first page of a
project opened in this process joins the group with a channel of its own, and every
notification received on it is handed to all the project's local pages directly.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from errorsink.projects import group_name

log = logging.getLogger(__name__)

# channels_redis forgets group members after a day (group_expiry); joining again refreshes it.
REFRESH_SECONDS = 3600


class Subscriber(Protocol):
    def events_stored_nowait(self, message: dict) -> None: ...


class ProjectHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.relays: dict[str, tuple[str, asyncio.Task]] = {}
        self.lock = asyncio.Lock()

    async def subscribe(self, project_id: object, subscriber: Subscriber) -> None:
        """Returns once the project's group is joined: later notifications reach the page."""
        key = str(project_id)
        async with self.lock:
            self.subscribers.setdefault(key, set()).add(subscriber)
            if key not in self.relays:
                channel = await self.layer.new_channel()
                await self.layer.group_add(group_name(key), channel)
                self.relays[key] = (channel, asyncio.create_task(self._relay(key, channel)))

    async def unsubscribe(self, project_id: object, subscriber: Subscriber) -> None:
        key = str(project_id)
        async with self.lock:
            subscribers = self.subscribers.get(key, set())
            subscribers.discard(subscriber)
            if subscribers or key not in self.relays:
                return
            del self.subscribers[key]
            channel, task = self.relays.pop(key)
            task.cancel()
            await self.layer.group_discard(group_name(key), channel)

    async def _relay(self, key: str, channel: str) -> None:
        receiving: asyncio.Future | None = None
        try:
            while True:
                if receiving is None:
                    receiving = asyncio.ensure_future(self.layer.receive(channel))
                done, _ = await asyncio.wait({receiving}, timeout=REFRESH_SECONDS)
                if not done:
                    await self.layer.group_add(group_name(key), channel)
                    continue
                finished, receiving = receiving, None
                try:
                    message = finished.result()
                except Exception:
                    # Redis away: wait and listen again; pages re-sync when they reconnect.
                    log.exception("live relay for project %s could not receive", key)
                    await asyncio.sleep(1)
                    continue
                for subscriber in list(self.subscribers.get(key, ())):
                    subscriber.events_stored_nowait(message)
        finally:
            if receiving is not None:
                receiving.cancel()


# One hub per event loop (Daphne runs one; tests start a loop per test).
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProjectHub] = (
    weakref.WeakKeyDictionary()
)


def project_hub() -> ProjectHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = ProjectHub(get_channel_layer())
    return hub
