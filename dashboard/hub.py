"""One channel-layer subscription per project per Daphne process, fanned out in memory.

With channels_redis every message received costs four sequential Redis round trips, all behind
one per-process lock. If each of 50 open pages joined the project's group itself, one
notification would be 50 messages and 200 round trips, and at 20 notifications a second the
queue behind that lock alone would add hundreds of milliseconds. Here the first page of a
project opened in this process joins the group with a channel of its own; notifications are
merged (at most one push per COALESCE_SECONDS, so a burst of thousands of events a second is a
few updates a second) and handed to all the project's local pages at once, which lets pages
with the same view share one rendering of the new rows. "Quality rollups moved" notices ride
the same pushes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import DatabaseError, connection

from dashboard import live_rows
from errorsink.live import EventsStored, QualityUpdated, StoredEvent, group_name

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.1
# How often a process with open pages checks that PostgreSQL answers: while it does not, no
# event can be stored, so the pages must not say "live".
HEALTH_SECONDS = 5.0
# A close the htmx websocket extension retries by itself: the page says "reconnecting…" and
# comes back, re-synced from the database, once the outage is over.
CLOSE_OUTAGE = 1011
# channels_redis forgets group members after a day (group_expiry); joining again refreshes it.
REFRESH_SECONDS = 3600


class Subscriber(Protocol):
    async def deliver(
        self, events: list[StoredEvent], shared: dict, *, quality_changed: bool = False
    ) -> None:
        """New events of the project, and whether its quality rollups moved; `shared` is one
        dict per push, for memoising renders."""

    async def close(self, code: int | None = None) -> None:
        """Close the page's socket (an outage: the page reconnects when it is over)."""


class _Project:
    def __init__(self, key: str, channel: str) -> None:
        self.key = key
        self.channel = channel
        self.subscribers: set[Subscriber] = set()
        self.pending: list[StoredEvent] = []
        self.quality_changed = False
        self.relay: asyncio.Task | None = None
        self.flusher: asyncio.Task | None = None
        self.last_flush = 0.0


# After Redis restarts, the layer's pooled connections are dead; the first call on one fails
# and drops it. One more try then finds a fresh connection, so a page opened just after the
# restart connects instead of getting a 500.
LAYER_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


async def layer_call[T](make: Callable[[], Awaitable[T]]) -> T:
    """A channel-layer call, tried once more after a lost connection."""
    try:
        return await make()
    except LAYER_ERRORS:
        log.info("channel layer connection lost; trying again on a new one")
        await asyncio.sleep(0.1)
        return await make()


class ProjectHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.projects: dict[str, _Project] = {}
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self.health: asyncio.Task | None = None

    async def subscribe(self, project_id: object, subscriber: Subscriber) -> None:
        """Returns once the project's group is joined: later notifications reach the page."""
        key = str(project_id)
        async with self.lock:
            project = self.projects.get(key)
            if project is None:
                project = _Project(key, await layer_call(self.layer.new_channel))
                await layer_call(lambda: self.layer.group_add(group_name(key), project.channel))
                project.relay = asyncio.create_task(self._relay(project))
                self.projects[key] = project
            project.subscribers.add(subscriber)
            if self.health is None or self.health.done():
                self.health = asyncio.create_task(self._watch_database())

    async def unsubscribe(self, project_id: object, subscriber: Subscriber) -> None:
        key = str(project_id)
        async with self.lock:
            project = self.projects.get(key)
            if project is None:
                return
            project.subscribers.discard(subscriber)
            if project.subscribers:
                return
            del self.projects[key]
            for task in (project.relay, project.flusher):
                if task is not None:
                    task.cancel()
            await self.layer.group_discard(group_name(key), project.channel)

    async def _relay(self, project: _Project) -> None:
        receiving: asyncio.Future | None = None
        try:
            while True:
                if receiving is None:
                    receiving = asyncio.ensure_future(self.layer.receive(project.channel))
                done, _ = await asyncio.wait({receiving}, timeout=REFRESH_SECONDS)
                if not done:
                    await self.layer.group_add(group_name(project.key), project.channel)
                    continue
                finished, receiving = receiving, None
                try:
                    message = finished.result()
                except Exception:
                    # Redis away: pushes are lost meanwhile, so the pages must not say "live";
                    # closed, they reconnect (and re-sync) once Redis is back.
                    log.exception("live relay for project %s could not receive", project.key)
                    await self._close_pages([project])
                    await asyncio.sleep(1)
                    continue
                self._take(project, message)
        finally:
            if receiving is not None:
                receiving.cancel()

    async def _watch_database(self) -> None:
        while self.projects:
            await asyncio.sleep(HEALTH_SECONDS)
            if not await database_sync_to_async(_database_answers)():
                log.warning("PostgreSQL does not answer: closing %d live pages until it does",
                            sum(len(p.subscribers) for p in self.projects.values()))  # fmt: skip
                await self._close_pages(list(self.projects.values()))

    async def _close_pages(self, projects: list[_Project]) -> None:
        pages = [subscriber for project in projects for subscriber in list(project.subscribers)]
        await asyncio.gather(*(page.close(code=CLOSE_OUTAGE) for page in pages),
                             return_exceptions=True)  # fmt: skip

    def _take(self, project: _Project, message: dict) -> None:
        """Queue the events of a message for the project's next push."""
        if QualityUpdated.is_one(message):
            project.quality_changed = True
            if project.flusher is None:
                self._schedule(project)
            return
        try:
            events = EventsStored.decode(message).events
        except ValueError:
            log.exception("live relay for project %s skipped a message", project.key)
            return
        project.pending.extend(events)
        if project.flusher is None:
            self._schedule(project)
        # Render the new rows now, while the push may still wait for the window.
        self._background(live_rows.warm(events))

    def _background(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)  # a reference, or the task may be collected before it finishes
        task.add_done_callback(self.tasks.discard)

    def _schedule(self, project: _Project) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, project.last_flush + COALESCE_SECONDS - loop.time())
        project.flusher = asyncio.create_task(self._flush_after(project, delay))

    async def _flush_after(self, project: _Project, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            events, project.pending = project.pending, []
            quality, project.quality_changed = project.quality_changed, False
            project.last_flush = asyncio.get_running_loop().time()
            shared: dict = {}
            subscribers = list(project.subscribers)
            results = await asyncio.gather(
                *(
                    subscriber.deliver(events, shared, quality_changed=quality)
                    for subscriber in subscribers
                ),  # fmt: skip
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, Exception):
                    # A push is only a hint; the page re-syncs from the database on reconnect.
                    log.error("live push failed for project %s", project.key, exc_info=result)
        finally:
            project.flusher = None
        if (project.pending or project.quality_changed) and self.projects.get(
            project.key
        ) is project:
            self._schedule(project)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        connection.close()  # a broken connection is not reused once PostgreSQL is back
        return False


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
