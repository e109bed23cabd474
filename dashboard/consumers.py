"""Live pushes to the dashboard: authorised on connect, one channel-layer group per project.

The project page also gets its quality panel again, out of band, whenever the rollups move.

Pages do not join the group themselves: one relay per project per process does
(dashboard/hub.py), merges bursts, and hands the new events to every page at once. Each
consumer answers with HTML for the htmx websocket extension: on (re)connect the whole current
table from the database (so a dropped connection misses nothing), then only new rows, swapped in
out of band. Rows and their out-of-band wrappers are the page templates' own partials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db import connection
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from dashboard.access_live import CLOSE_NO_ACCESS, CLOSE_SIGNED_OUT, user_group
from dashboard.hub import layer_call, project_hub
from dashboard.issue_views import issue_events_context, issue_summary_context
from dashboard.live_rows import row_html, row_metas
from dashboard.present import timeline_annotate
from dashboard.quality_panel import REDRAW_SECONDS, panel_html, window_param
from dashboard.triage import filters_read, issue_table_html
from errorsink.issues.selectors import error_ids_matching, errors_page, issue_get
from errorsink.live import StoredEvent
from errorsink.projects.services import project_for_user
from errorsink.quality.rollups import rollups_watermark
from errorsink.sessions.models import Event
from errorsink.sessions.selectors import LATEST_ERRORS, EventMeta, events_by_ids, session_events


def _still_allowed(user, project_id) -> bool:
    # The user as stored now, not as the socket's scope remembers them from connect.
    # By the model, not type(user): the scope holds Channels' lazy wrapper, not a User.
    fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    return fresh is not None and project_for_user(user=fresh, project_id=project_id) is not None


def _has_nul(scope: dict) -> bool:
    query = unquote(scope.get("query_string", b"").decode("latin-1"))
    return "\x00" in scope.get("path", "") or "\x00" in query


class _LiveConsumer(AsyncWebsocketConsumer):
    """Authorise, subscribe to the project, send the full view, then pushes of new events."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        if _has_nul(self.scope):
            await self.close()  # no page holds one (see config/middleware.py): refused
            return
        project = await database_sync_to_async(project_for_user)(
            user=self.scope["user"], project_id=kwargs["project_id"]
        )
        if project is None or not await self.authorised(project):
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.project_id = project.id
        self.params = {
            k: v[0].strip() for k, v in parse_qs(self.scope["query_string"].decode()).items()
        }
        self._synced = False
        self._early: list[int] = []
        self._quality_early = False
        # A long window's figures barely move in seconds and cost the most to read: redrawn at
        # most every quality_interval() seconds, once more after the last change.
        self.quality_redraw = _Redraw(self, self.quality_html, self.quality_interval(),
                                      key=self.quality_key)  # fmt: skip
        self.quality_redraw.drawn()  # the page drew it just now
        # Subscribe before reading the database: anything stored after the read is then pushed.
        await project_hub().subscribe(project.id, self)
        self.subscribed = True
        # Told when this user's access changes, for as long as the socket is open.
        self.access_group = user_group(self.scope["user"].pk)
        await layer_call(lambda: self.channel_layer.group_add(self.access_group, self.channel_name))
        await self.accept()
        for message in await self.sync_messages():
            await self._send_push(message)
        # Pushes only after the full table, or the table would overwrite them; and in order:
        # what arrives while the early ones go out joins them, until none are left.
        while self._early or self._quality_early:
            ids, self._early = self._early, []
            if ids:
                await self._send_push(await self.push_html(ids))
            if self._quality_early:
                self._quality_early = False
                await self._send_push(await self.quality_html())
        self._synced = True

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "quality_redraw"):
            self.quality_redraw.cancel()
        if getattr(self, "subscribed", False):
            await project_hub().unsubscribe(self.project_id, self)
            await self.channel_layer.group_discard(self.access_group, self.channel_name)

    async def access_changed(self, message: dict) -> None:
        """The user's memberships or account changed: keep the socket only if still allowed."""
        allowed = await database_sync_to_async(_still_allowed)(self.scope["user"], self.project_id)
        if not allowed:
            await self.close(code=CLOSE_NO_ACCESS)

    async def access_ended(self, message: dict) -> None:
        """The user signed out: that browser session's sockets close (others stay)."""
        session = self.scope.get("session")
        if session is not None and session.session_key == message["session_key"]:
            await self.close(code=CLOSE_SIGNED_OUT)

    async def deliver(
        self, events: list[StoredEvent], shared: dict, *, quality_changed: bool = False
    ) -> None:
        """New events relayed by the process's hub (dashboard/hub.py)."""
        if quality_changed and self.quality_key() is not None:
            if self._synced:
                self.quality_redraw.soon(shared)
            else:
                self._quality_early = True
        ids = [event.pk for event in events if self.wants(event.kind)]
        if not ids:
            return
        if not self._synced:
            self._early.extend(ids)
            return
        key = self.shared_key()
        if key is None:
            await self._send_push(await self.push_html(ids))
            return
        # Pages showing the same view get the same rows: render them once for all.
        if key not in shared:
            shared[key] = asyncio.ensure_future(self.push_html(ids))
        await self._send_push(await shared[key])

    async def _send_push(self, html: str) -> None:
        if html:
            await self.send(text_data=html)

    async def authorised(self, project) -> bool:
        """Whatever the page shows beyond its project exists in that project."""
        return True

    def shared_key(self) -> tuple | None:
        return None

    def quality_key(self) -> tuple | None:
        """What the page's quality panel depends on; None for pages without one."""
        return None

    def quality_interval(self) -> float:
        """The fewest seconds between two redraws of the page's quality panel."""
        return 0.0

    async def quality_html(self) -> str:
        return ""

    def wants(self, kind: str) -> bool:
        raise NotImplementedError

    async def sync_html(self) -> str:
        raise NotImplementedError

    async def sync_messages(self) -> list[str]:
        """The whole view, as one message per part: htmx parses a message that starts with a
        table row as table content, so rows and sections that hold tables go separately."""
        return [await self.sync_html()]

    async def push_html(self, ids: list[int]) -> str:
        raise NotImplementedError


class _Redraw:
    """Send a part of a page again soon: at most once per ``interval`` seconds, and once more
    after the last request, so a burst ends with the page current. Every live part that is
    redrawn rather than appended to (issue tables, quality panels, issue pages) goes through
    one of these."""

    def __init__(
        self,
        consumer: _LiveConsumer,
        render: Callable[[], Awaitable[str]],
        interval: float,
        *,
        key: Callable[[], tuple | None] = lambda: None,
    ) -> None:
        self.consumer, self.render, self.interval, self.key = consumer, render, interval, key
        self.drawn_at = 0.0
        self.task: asyncio.Task | None = None
        self.again = False

    def drawn(self) -> None:
        self.drawn_at = asyncio.get_running_loop().time()

    def soon(self, shared: dict | None = None) -> None:
        """Redraw in the background (the hub waits for every page's delivery before its next
        push). ``shared`` is the hub's render-once map for the push that asked."""
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.create_task(self._run({} if shared is None else shared))

    async def _run(self, shared: dict) -> None:
        while True:
            wait = self.drawn_at + self.interval - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
                shared = {}  # renders shared with that push are stale by now
            self.again = False
            self.drawn()
            await self.consumer._send_push(await self._rendered(shared))
            shared = {}
            if not self.again:
                return

    async def _rendered(self, shared: dict) -> str:
        # Pages showing the same view at the same push get the same HTML: rendered once.
        key = self.key()
        if key is None:
            return await self.render()
        if key not in shared:
            shared[key] = asyncio.ensure_future(self.render())
        return await shared[key]

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


# One issue table per project and filters per process, shared by the pages showing it while it
# is younger than ISSUE_TABLE_SHARED_SECONDS. Each page redrawing its own every 2 s, 200 open
# pages queued 100 renders a second on the one thread Django's database calls run on, and every
# live push waited behind them (bench/load.py: pages 16 s behind). The table holds nothing of
# the user (no CSRF token): the same project and filters give the same HTML.
ISSUE_TABLE_SHARED_SECONDS = 1.0
_issue_tables: dict[tuple, tuple[float, asyncio.Future]] = {}


async def _issue_table_shared(key: tuple, render) -> str:
    now = asyncio.get_running_loop().time()
    made = _issue_tables.get(key)
    if made is None or now - made[0] >= ISSUE_TABLE_SHARED_SECONDS:
        for stale in [k for k, (at, _) in _issue_tables.items() if now - at > 10]:
            del _issue_tables[stale]
        made = (now, asyncio.ensure_future(database_sync_to_async(render)()))
        _issue_tables[key] = made
    # Shielded: a page closing while it waits must not cancel the others' render.
    return await asyncio.shield(made[1])


class ProjectConsumer(_LiveConsumer):
    """The project's triage view: its issues (redrawn as new errors move the counts) and its
    errors with the page's filters (new ones on top, unless the page shows older ones)."""

    SYNC = "dashboard/project.html#error-rows-sync"
    PUSH = "dashboard/project.html#error-rows-push"
    ISSUES_REDRAW_SECONDS = 2.0

    async def connect(self) -> None:
        self.filters = filters_read(
            {k: v[0] for k, v in parse_qs(self.scope["query_string"].decode()).items()}
        )
        self.issues_redraw = _Redraw(self, self._issue_table_html, self.ISSUES_REDRAW_SECONDS)
        await super().connect()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "issues_redraw"):
            self.issues_redraw.cancel()
        await super().disconnect(code)

    async def deliver(
        self, events: list[StoredEvent], shared: dict, *, quality_changed: bool = False
    ) -> None:
        if self._synced and any(event.kind == Event.ERROR for event in events):
            self.issues_redraw.soon()
        await super().deliver(events, shared, quality_changed=quality_changed)

    def wants(self, kind: str) -> bool:
        # A page of older errors (or up to a time) takes no new rows.
        return kind == Event.ERROR and not self.filters.paged

    def shared_key(self) -> tuple:
        return ("errors", *sorted(self.filters.errors.filled().items()))

    def _matches(self, row: EventMeta) -> bool:
        search = self.filters.errors
        return (
            row.project_id == self.project_id
            and row.kind == Event.ERROR
            and row.code.upper().startswith(search.code.upper())
            and (not search.source or row.source == search.source)
        )

    def _database_decides(self) -> bool:
        """Filters only the database can apply as the list does (words, context, build, time)."""
        search = self.filters.errors
        return bool(search.q or search.ctx or search.build_id or search.since)

    def _latest_ids(self) -> list[int]:
        page = errors_page(project_id=self.project_id, search=self.filters.errors)
        return [event.pk for event in page.items]

    def _issue_table(self) -> str:
        return issue_table_html(project=self.project, filters=self.filters, oob=True)

    async def _issue_table_html(self) -> str:
        """The issues again, or nothing when the new errors changed none of those shown."""
        html = await _issue_table_shared((self.project_id, self.shared_key()), self._issue_table)
        if html == self._issues_sent:
            return ""
        self._issues_sent = html
        return html

    async def authorised(self, project) -> bool:
        self.project = project
        return True

    def quality_key(self) -> tuple:
        return ("quality", self._window(), self.params.get("code", ""),
                self.params.get("source", ""))  # fmt: skip

    def _window(self) -> str:
        return window_param(self.params.get("window"))

    def quality_interval(self) -> float:
        return REDRAW_SECONDS[self._window()]

    def _quality_panel(self) -> str:
        params = {"code": self.params.get("code", ""), "source": self.params.get("source", "")}
        return panel_html(project_id=self.project_id, window=self._window(), params=params,
                          oob=True)  # fmt: skip

    def _quality_panel_own_connection(self) -> str:
        try:
            return self._quality_panel()
        finally:
            connection.close()  # this pool thread's own connection; the next read opens one

    async def quality_html(self) -> str:
        # Not on the one thread Channels runs database calls on by default: rows for the live
        # tables must not queue behind a read of a month of figures.
        return await sync_to_async(self._quality_panel_own_connection, thread_sensitive=False)()

    def _sync_read(self) -> tuple[list[int], list[str]]:
        """The page's errors and issues, and the panel again if the rollups moved since the
        page drew it (a reconnect after a drop; a fresh page's panel is already current)."""
        ids = self._latest_ids()
        drawn = self.params.get("rollups", "")
        panel = "" if drawn == str(rollups_watermark()) else self._quality_panel()
        self._issues_sent = self._issue_table()
        return ids, [self._issues_sent, panel]

    async def sync_messages(self) -> list[str]:
        ids, (issues, panel) = await database_sync_to_async(self._sync_read)()
        self.issues_redraw.drawn()
        html = await row_html(ids)
        rows = [html[pk] for pk in ids if pk in html]
        context = {"rows": rows, "filtered": self.filters.any_set, "project": self.project}
        # Sections together (they hold tables), rows apart (they are table content).
        return [issues + panel, render_to_string(self.SYNC, context)]

    async def push_html(self, ids: list[int]) -> str:
        # Pick this page's newest matching rows from cheap metadata; render only those.
        metas = [meta for meta in (await row_metas(ids)).values() if self._matches(meta)]
        if metas and self._database_decides():
            kept = await database_sync_to_async(error_ids_matching)(
                project_id=self.project_id, search=self.filters.errors,
                ids=[meta.pk for meta in metas],
            )  # fmt: skip
            metas = [meta for meta in metas if meta.pk in kept]
        if not metas:
            return ""
        metas.sort(key=lambda meta: meta.order, reverse=True)
        shown = [meta.pk for meta in metas[:LATEST_ERRORS]]
        html = await row_html(shown)
        rows = [html[pk] for pk in shown if pk in html]
        return render_to_string(self.PUSH, {"rows": rows}) if rows else ""


class SessionConsumer(_LiveConsumer):
    """One session's timeline: new events are appended, or the list re-synced if one of them
    belongs before what is already shown (clients' clocks and queues do not keep order). A
    timeline cut at its limit stays cut: what comes later lies beyond what the page shows."""

    TIMELINE_ROW = "dashboard/session.html#timeline-row"
    SYNC = "dashboard/session.html#timeline-sync"
    PUSH = "dashboard/session.html#timeline-push"

    async def connect(self) -> None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        self._start = None
        self._last = None
        await super().connect()

    def wants(self, kind: str) -> bool:
        return True

    def _rows(self, events: list[Event]) -> list[SafeString]:
        """The rows of events in time order, as the page renders them."""
        timeline_annotate(events, start=self._start)
        if events:
            self._last = (events[-1].occurred_at, events[-1].pk)
        # Escaped by the row partial; stripped so the rows join as the page's do.
        return [
            mark_safe(render_to_string(self.TIMELINE_ROW, {"event": event}).strip())
            for event in events
        ]

    def _timeline_all(self) -> str:
        timeline = session_events(project_id=self.project_id, session_id=self.session_id)
        self._timeline = timeline
        self._shown = len(timeline.events)
        self._start = timeline.events[0].occurred_at if timeline.events else None
        self._last = None
        rows = self._rows(timeline.events)
        return render_to_string(self.SYNC, {"rows": rows, "timeline": timeline})

    def _timeline_new(self, ids: list[int]) -> str:
        events = events_by_ids(ids=ids, project_id=self.project_id, session_id=self.session_id)
        if not events:
            return ""
        events.sort(key=lambda event: (event.occurred_at, event.pk))
        if self._last is None or (events[0].occurred_at, events[0].pk) < self._last:
            return self._timeline_all()
        if self._timeline.truncated:
            return ""  # after the cut; re-sending the cut list would not show them either
        if self._shown + len(events) > self._timeline.limit:
            return self._timeline_all()  # cut now: the page gets the cut list and its note
        self._shown += len(events)
        return render_to_string(self.PUSH, {"rows": self._rows(events)})

    async def sync_html(self) -> str:
        return await database_sync_to_async(self._timeline_all)()

    async def push_html(self, ids: list[int]) -> str:
        return await database_sync_to_async(self._timeline_new)(ids)


class IssueConsumer(_LiveConsumer):
    """One issue's figures and newest events, redrawn when events of it arrive: at most once a
    REDRAW_SECONDS, once more after the last, since a burst of one error is exactly when an
    issue page is open."""

    LIVE = "dashboard/issue.html#issue-live"
    REDRAW_SECONDS = 1.0

    async def authorised(self, project) -> bool:
        issue_id = self.scope["url_route"]["kwargs"]["issue_id"]
        self.project = project
        self.issue = await database_sync_to_async(issue_get)(
            project_id=project.id, issue_id=issue_id
        )
        self.redraw = _Redraw(self, self._live_html_async, self.REDRAW_SECONDS)
        return self.issue is not None

    def wants(self, kind: str) -> bool:
        return kind == Event.ERROR

    def _paged(self) -> bool:
        return "paged" in parse_qs(self.scope["query_string"].decode())

    def _live_html(self) -> str:
        issue = issue_get(project_id=self.project_id, issue_id=self.issue.id)
        if issue is None:
            return ""  # deleted with its project; the page's next load says so
        self.issue = issue
        context = {"project": self.project, "oob": True, "events_push": not self._paged(),
                   **issue_summary_context(issue)}  # fmt: skip
        if not self._paged():
            context.update(issue_events_context(issue, ""))
        return render_to_string(self.LIVE, context)

    def _has_events_of_issue(self, ids: list[int]) -> bool:
        return Event.objects.filter(
            id__in=ids, project_id=self.project_id, kind=Event.ERROR,
            fingerprint=self.issue.fingerprint,
        ).exists()  # fmt: skip

    async def _live_html_async(self) -> str:
        return await database_sync_to_async(self._live_html)()

    async def sync_html(self) -> str:
        self.redraw.drawn()
        return await self._live_html_async()

    async def push_html(self, ids: list[int]) -> str:
        if await database_sync_to_async(self._has_events_of_issue)(ids):
            self.redraw.soon()
        return ""

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "redraw"):
            self.redraw.cancel()
        await super().disconnect(code)
