"""Live pushes to the dashboard: authorised on connect, one channel-layer group per project.

Pages do not join the group themselves: one relay per project per process does
(dashboard/hub.py) and hands each notification to its pages. Each consumer answers with HTML for
the htmx websocket extension: on (re)connect the whole current table from the database (so a
dropped connection misses nothing), then only new rows, swapped in out of band. Bursts are
merged: notifications arriving within COALESCE_SECONDS of the last push wait and go together.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from dashboard.hub import project_hub
from dashboard.live_rows import RowMeta, row_html, row_metas
from dashboard.present import timeline_annotate
from dashboard.selectors import LATEST_LIMIT, events_by_ids, project_errors_latest, session_timeline
from errorsink.models import Event
from errorsink.projects import project_for_user

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.1


class _LiveConsumer(AsyncWebsocketConsumer):
    """Authorise, subscribe to the project, merge `events.stored` bursts into few pushes."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        project = await database_sync_to_async(project_for_user)(
            user=self.scope["user"], project_id=kwargs["project_id"]
        )
        if project is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.project_id = project.id
        self.params = {
            k: v[0].strip() for k, v in parse_qs(self.scope["query_string"].decode()).items()
        }
        self._pending: list[int] = []
        self._flush_task: asyncio.Task | None = None
        self._last_flush = 0.0
        self._synced = False
        # Subscribe before reading the database: anything stored after the read is then pushed.
        await project_hub().subscribe(project.id, self)
        self.subscribed = True
        await self.accept()
        await self.send(text_data=await self.sync_html())
        # Pushes only after the full table, or the table would overwrite them.
        self._synced = True
        if self._pending:
            self._schedule_flush()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "subscribed", False):
            await project_hub().unsubscribe(self.project_id, self)
        if getattr(self, "_flush_task", None) is not None:
            self._flush_task.cancel()

    def events_stored_nowait(self, message: dict) -> None:
        """A notification relayed by the process's hub (see dashboard/hub.py)."""
        ids = [pk for pk, kind in message.get("events", []) if self.wants(kind)]
        if not ids:
            return
        self._pending.extend(ids)
        if self._synced and self._flush_task is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + COALESCE_SECONDS - loop.time())
        self._flush_task = asyncio.create_task(self._flush_after(delay))

    async def _flush_after(self, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            ids, self._pending = self._pending, []
            self._last_flush = asyncio.get_running_loop().time()
            html = await self.push_html(ids)
            if html:
                await self.send(text_data=html)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A push is only a hint; the page re-syncs from the database on reconnect.
            log.exception("live push failed for project %s", self.project_id)
        finally:
            self._flush_task = None
        if self._pending:
            self._schedule_flush()

    def wants(self, kind: str) -> bool:
        raise NotImplementedError

    async def sync_html(self) -> str:
        raise NotImplementedError

    async def push_html(self, ids: list[int]) -> str:
        raise NotImplementedError


class ProjectConsumer(_LiveConsumer):
    """The last errors of a project, with the page's code/source filter."""

    def wants(self, kind: str) -> bool:
        return kind == Event.ERROR

    def _matches(self, row: RowMeta) -> bool:
        code, source = self.params.get("code", ""), self.params.get("source", "")
        return (
            row.project_id == self.project_id
            and row.kind == Event.ERROR
            and (not code or row.code == code)
            and (not source or row.source == source)
        )

    def _latest_ids(self) -> list[int]:
        events = project_errors_latest(
            project_id=self.project_id,
            code=self.params.get("code", ""),
            source=self.params.get("source", ""),
        )
        return [event.pk for event in events]

    async def sync_html(self) -> str:
        ids = await database_sync_to_async(self._latest_ids)()
        html = await row_html(ids)
        body = "".join(html[pk] for pk in ids if pk in html)
        if not body:
            body = render_to_string("dashboard/project.html#empty-row").strip()
        return f'<tbody id="error-rows" hx-swap-oob="true">{body}</tbody>'

    async def push_html(self, ids: list[int]) -> str:
        # Pick this page's newest matching rows from cheap metadata; render only those.
        metas = [meta for meta in (await row_metas(ids)).values() if self._matches(meta)]
        if not metas:
            return ""
        metas.sort(key=lambda meta: meta.order, reverse=True)
        shown = [meta.pk for meta in metas[:LATEST_LIMIT]]
        html = await row_html(shown)
        body = "".join(html[pk] for pk in shown if pk in html)
        return f'<tbody hx-swap-oob="afterbegin:#error-rows">{body}</tbody>' if body else ""


class SessionConsumer(_LiveConsumer):
    """One session's timeline: new events are appended, or the list re-synced if one of them
    belongs before what is already shown (clients' clocks and queues do not keep order)."""

    TIMELINE_ROW = "dashboard/session.html#timeline-row"

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self._start = None
        self._last = None
        await super().connect()

    def wants(self, kind: str) -> bool:
        return True

    def _render(self, events: list[Event]) -> str:
        timeline_annotate(events, start=self._start)
        self._last = max((event.occurred_at, event.pk) for event in events)
        return "".join(
            render_to_string(self.TIMELINE_ROW, {"event": event}).strip() for event in events
        )

    def _timeline_all(self) -> str:
        events = session_timeline(project_id=self.project_id, session_id=self.session_id)
        if not events:
            self._start = self._last = None
            return '<ol id="timeline-rows" hx-swap-oob="true"></ol>'
        self._start = events[0].occurred_at
        return f'<ol id="timeline-rows" hx-swap-oob="true">{self._render(events)}</ol>'

    def _timeline_new(self, ids: list[int]) -> str:
        events = [
            event
            for event in events_by_ids(ids=ids, project_id=self.project_id)
            if event.session_id == self.session_id
        ]
        if not events:
            return ""
        events.sort(key=lambda event: (event.occurred_at, event.pk))
        if self._last is None or (events[0].occurred_at, events[0].pk) < self._last:
            return self._timeline_all()
        return f'<ol hx-swap-oob="beforeend:#timeline-rows">{self._render(events)}</ol>'

    async def sync_html(self) -> str:
        return await database_sync_to_async(self._timeline_all)()

    async def push_html(self, ids: list[int]) -> str:
        return await database_sync_to_async(self._timeline_new)(ids)
