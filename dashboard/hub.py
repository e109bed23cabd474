"""One channel-layer subscription per project per Daphne process, fanned out in memory by view.

With channels_redis every message received costs four sequential Redis round trips, all behind
one per-process lock, so pages never join the project's group themselves: the first page of a
project opened in this process joins it with a channel of its own. Notifications are merged (the
first after a quiet spell goes out at once, then at most one push per COALESCE_SECONDS), and
each push is made once per distinct view, not once per page: pages showing the same thing
(project, filters, window) form a `_View`, whose new rows are picked and rendered once and whose
bytes go to every page of it. The work of a push therefore grows with the number of views, and
only the final send with the number of pages. Redraws of whole parts (the issue table, the
quality panel, an issue's figures) are made per view too, each at most once per its interval,
in tasks of their own so they never hold up the rows.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

import redis
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connection

from dashboard.live_db import live_read, queries_run
from dashboard.live_rows import metas_remember
from dashboard.raw_socket import text_frame
from errorsink.ingest.queue import TAKE_EVERY_SECONDS
from errorsink.live import EventsStored, QualityUpdated, StoredEvent, group_name

log = logging.getLogger(__name__)

# Under load, the fewest seconds between two pushes of a project (a quiet spell's first event
# goes at once). A worker's notices come about 50 ms apart (its readers' pace), each with what
# one batch stored: a window of half that lets each go at once, and merges only the notices of
# several workers or of a backlog. At 50 ms, notices whose gaps jittered below it waited up to
# 28 ms (p90) for the window (docs/benchmarks.md).
COALESCE_SECONDS = TAKE_EVERY_SECONDS / 2
# The event loop is checked this often; later than STALL_SECONDS counts as a stall.
LOOP_TICK_SECONDS = 0.05
STALL_SECONDS = 0.1
# How often a process with open pages checks that PostgreSQL answers: while it does not, no
# event can be stored, so the pages must not say "live".
HEALTH_SECONDS = 5.0
# A close the htmx websocket extension retries by itself: the page says "reconnecting…" and
# comes back, re-synced from the database, once the outage is over.
CLOSE_OUTAGE = 1011
# channels_redis forgets group members after a day (group_expiry); joining again refreshes it.
REFRESH_SECONDS = 3600


class Subscriber(Protocol):
    """An open page, as the hub sees it (dashboard/consumers.py)."""

    def view_key(self) -> Hashable | None:
        """Equal for pages that show the same thing; None for a page whose pushes are its own."""

    def wanted(self, events: list[StoredEvent]) -> list[int]:
        """The ids among new events that the view would add to its rows."""

    async def push_html(self, ids: list[int]) -> str:
        """The view's push for those ids ("" for none)."""

    async def parts_due(self, events: list[StoredEvent], quality_changed: bool) -> list[str]:
        """Names of the view's parts to redraw after these events."""

    def part_interval(self, name: str) -> float:
        """The fewest seconds between two redraws of that part."""

    async def render_part(self, name: str) -> str:
        """The part as the page draws it, out of band."""

    async def take_push(self, message: Message, ids: list[int]) -> bool:
        """A push made for the page's view; True when it went out to the socket."""

    async def take_part(self, name: str, message: Message) -> bool:
        """A redrawn part of the page's view; True when it went out to the socket."""

    async def close(self, code: int | None = None) -> None:
        """Close the page's socket (an outage: the page reconnects when it is over)."""


class Message:
    """One push's text, and its websocket frame, made once for every page it goes to."""

    __slots__ = ("text", "_frame")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame


@dataclass
class LiveStats:
    """What this process's live pages cost, logged as `live stats k=v ...` (cumulative)."""

    pushes: int = 0  # one per view per merged notification that gave it anything to do
    renders: int = 0  # row pushes and part redraws rendered
    sends: int = 0  # messages handed to sockets
    resyncs: int = 0  # pages redrawn after they stopped reading
    skipped: int = 0  # pushes not sent to a page that was behind
    stalls: int = 0  # times the event loop answered over STALL_SECONDS late: every page waited

    def line(self, pages: int) -> str:
        return (f"live stats pushes={self.pushes} renders={self.renders} sends={self.sends} "
                f"queries={queries_run()} resyncs={self.resyncs} skipped={self.skipped} "
                f"stalls={self.stalls} pages={pages}")  # fmt: skip


class _Redraw:
    """Run ``draw`` soon: at most once per ``interval`` seconds, and once more after the last
    request, so a burst ends with the part current."""

    def __init__(self, draw: Callable[[], Awaitable[None]], interval: float) -> None:
        self.draw, self.interval = draw, interval
        self.drawn_at = asyncio.get_running_loop().time()  # the pages drew it as they loaded
        self.task: asyncio.Task | None = None
        self.again = False

    def soon(self) -> None:
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            wait = self.drawn_at + self.interval - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.again = False
            self.drawn_at = asyncio.get_running_loop().time()
            try:
                await self.draw()
            except Exception:
                log.exception("a live redraw failed; the pages keep their last one")
            if not self.again:
                return

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class _View:
    """Pages of one project showing the same thing: rendered for once, sent to each."""

    def __init__(self, stats: LiveStats) -> None:
        self.stats = stats
        self.pages: dict[Subscriber, None] = {}  # ordered: the first is the one asked to render
        self.redraws: dict[str, _Redraw] = {}
        self.sent: dict[str, str] = {}  # each part as last sent, to skip an unchanged redraw

    def lead(self) -> Subscriber:
        return next(iter(self.pages))

    async def push(self, events: list[StoredEvent], quality_changed: bool) -> None:
        if not self.pages:
            return  # its last page closed since the push began
        lead = self.lead()
        ids = lead.wanted(events)
        if ids:
            html = await lead.push_html(ids)
            self.stats.pushes += 1
            self.stats.renders += 1
            if html:  # "" when none of them passes the view's filters, for any page
                message = Message(html)
                await self._hand_out(lambda page: page.take_push(message, ids))
        for name in await lead.parts_due(events, quality_changed):
            if name not in self.redraws:
                interval = lead.part_interval(name)
                self.redraws[name] = _Redraw(lambda name=name: self._redraw(name), interval)
            self.redraws[name].soon()

    async def _redraw(self, name: str) -> None:
        if not self.pages:
            return
        html = await self.lead().render_part(name)
        self.stats.renders += 1
        if not html or html == self.sent.get(name):
            return
        self.sent[name] = html
        message = Message(html)
        await self._hand_out(lambda page: page.take_part(name, message))

    async def _hand_out(self, take: Callable[[Subscriber], Awaitable[bool]]) -> None:
        # One page after another: Daphne's send only buffers, so none waits for a slow reader.
        for page in list(self.pages):
            try:
                sent = await take(page)
            except Exception:
                # A push is only a hint; the page re-syncs from the database on reconnect.
                log.exception("a live push to one page failed")
                continue
            if sent:
                self.stats.sends += 1
            else:
                self.stats.skipped += 1

    def close(self) -> None:
        for redraw in self.redraws.values():
            redraw.cancel()


class _Project:
    def __init__(self, key: str, channel: str) -> None:
        self.key = key
        self.channel = channel
        self.views: dict[Hashable, _View] = {}
        self.pending: list[StoredEvent] = []
        self.quality_changed = False
        self.relay: asyncio.Task | None = None
        self.flusher: asyncio.Task | None = None
        self.last_flush = 0.0

    @property
    def subscribers(self) -> list[Subscriber]:
        return [page for view in self.views.values() for page in view.pages]


def _view_key(page: Subscriber) -> Hashable:
    key = page.view_key()
    return ("own", id(page)) if key is None else key


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
        self.health: asyncio.Task | None = None
        self.stats = LiveStats()
        self.reporter: asyncio.Task | None = None

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
            key = _view_key(subscriber)
            view = project.views.get(key)
            if view is None:
                view = project.views[key] = _View(self.stats)
            view.pages[subscriber] = None
            if self.health is None or self.health.done():
                self.health = asyncio.create_task(self._watch_database())
            if self.reporter is None or self.reporter.done():
                self.reporter = asyncio.create_task(self._report())

    async def unsubscribe(self, project_id: object, subscriber: Subscriber) -> None:
        key = str(project_id)
        async with self.lock:
            project = self.projects.get(key)
            if project is None:
                return
            view_key = _view_key(subscriber)
            view = project.views.get(view_key)
            if view is not None:
                view.pages.pop(subscriber, None)
                if not view.pages:
                    view.close()
                    del project.views[view_key]
            if project.views:
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
            if not await live_read(_database_answers):
                log.warning("PostgreSQL does not answer: closing %d live pages until it does",
                            sum(len(p.subscribers) for p in self.projects.values()))  # fmt: skip
                await self._close_pages(list(self.projects.values()))

    async def _report(self) -> None:
        """Log the counters now and then while anything moves (the load benchmark reads them)."""
        last = ""
        watch = asyncio.create_task(self._watch_loop())
        while self.projects:
            await asyncio.sleep(settings.ERRORSINK_LIVE_STATS_SECONDS)
            pages = sum(len(p.subscribers) for p in self.projects.values())
            line = self.stats.line(pages)
            if line != last:
                log.info("%s", line)
                last = line
        watch.cancel()

    async def _watch_loop(self) -> None:
        """Count the times this process's event loop was late to wake: whatever held it (a
        callback, a collection, the CPU taken by others) delayed every push of every page."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LOOP_TICK_SECONDS
            await asyncio.sleep(LOOP_TICK_SECONDS)
            late = loop.time() - due
            if late > STALL_SECONDS:
                self.stats.stalls += 1
                log.info("live pages waited %.0f ms for the event loop", late * 1000)

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
        metas_remember(project.key, events)  # the pick of new rows reads nothing
        project.pending.extend(events)
        if project.flusher is None:
            self._schedule(project)

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
            views = list(project.views.values())
            results = await asyncio.gather(*(view.push(events, quality) for view in views),
                                           return_exceptions=True)  # fmt: skip
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
