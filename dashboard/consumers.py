"""Live pushes to the dashboard: authorised on connect, one channel-layer group per project.

Pages do not join the group themselves: one relay per project per process does
(dashboard/hub.py), merges bursts, and makes each push once per view (pages showing the same
thing), asking one page of the view to render it (`push_html`, `render_part`) and handing the
result to every page of it (`take_push`, `take_part`). Each consumer answers with HTML for the
htmx websocket extension: on (re)connect the whole current view from the database (so a dropped
connection misses nothing), then only new rows and redrawn parts, swapped in out of band. Rows
and their out-of-band wrappers are the page templates' own partials.

A page whose browser stops reading (dashboard/raw_socket.py) gets nothing more once its
socket holds ERRORSINK_LIVE_BACKLOG_BYTES; when it has read everything it is redrawn from the
database, as on a reconnect: its memory in this process stays bounded and it never shows a
stream of stale pushes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from urllib.parse import parse_qs, unquote

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from dashboard.access_live import CLOSE_NO_ACCESS, CLOSE_SIGNED_OUT, user_group
from dashboard.hub import Message, layer_call, project_hub
from dashboard.issue_views import issue_events_context, issue_summary_context
from dashboard.latency_panel import latency_panel_html
from dashboard.live_db import live_read
from dashboard.live_rows import row_html, row_metas
from dashboard.present import timeline_annotate
from dashboard.quality_panel import REDRAW_SECONDS, PanelWindow, panel_html, window_read
from dashboard.raw_socket import SCOPE_KEY
from dashboard.triage import filters_read, issue_table_html
from errorsink.alerts.evaluate import alerts_firing
from errorsink.issues.selectors import error_ids_matching, errors_page, issue_get
from errorsink.live import StoredEvent
from errorsink.projects.services import project_for_user
from errorsink.quality.rollups import rollups_watermark
from errorsink.sessions.models import Event
from errorsink.sessions.selectors import LATEST_ERRORS, EventMeta, events_by_ids, session_events
from errorsink.turns.reads import timeline_folded

# How often a page that stopped reading is checked for having read everything again.
BEHIND_POLL_SECONDS = 0.25


def _still_allowed(user, project_id) -> bool:
    # The user as stored now, not as the socket's scope remembers them from connect.
    # By the model, not type(user): the scope holds Channels' lazy wrapper, not a User.
    fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    return fresh is not None and project_for_user(user=fresh, project_id=project_id) is not None


def _has_nul(scope: dict) -> bool:
    query = unquote(scope.get("query_string", b"").decode("latin-1"))
    return "\x00" in scope.get("path", "") or "\x00" in query


def _error_ids(events: list[StoredEvent]) -> list[int]:
    return [event.pk for event in events if event.kind == Event.ERROR]


class _LiveConsumer(AsyncWebsocketConsumer):
    """Authorise, subscribe to the project, send the full view, then pushes of new events."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        if _has_nul(self.scope):
            await self.close()  # no page holds one (see config/middleware.py): refused
            return
        project = await live_read(
            project_for_user, user=self.scope["user"], project_id=kwargs["project_id"]
        )
        if project is None or not await self.authorised(project):
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.project_id = project.id
        self.params = {
            k: v[0].strip() for k, v in parse_qs(self.scope["query_string"].decode()).items()
        }
        self.raw = self.scope.get(SCOPE_KEY)
        self._synced = False
        self._early: list[int] = []
        self._parts_early: set[str] = set()
        self._behind: asyncio.Task | None = None
        # Subscribe before reading the database: anything stored after the read is then pushed.
        await project_hub().subscribe(project.id, self)
        self.subscribed = True
        # Told when this user's access changes, for as long as the socket is open.
        self.access_group = user_group(self.scope["user"].pk)
        await layer_call(lambda: self.channel_layer.group_add(self.access_group, self.channel_name))
        await self.accept()
        await self._send_whole_view()

    async def _send_whole_view(self) -> None:
        """The whole view, then what was pushed meanwhile, in order: pushes only after the full
        view, or the view would overwrite them; what arrives while the early ones go out joins
        them, until none are left."""
        self._synced = False
        for message in await self.sync_messages():
            await self._send(message)
        while self._early or self._parts_early:
            ids, self._early = self._early, []
            if ids:
                await self._send(await self.push_html(ids))
            parts, self._parts_early = self._parts_early, set()
            for name in sorted(parts):
                await self._send(await self.render_part(name))
        self._synced = True

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A consumer that dies of an error never gets its disconnect: leave the hub anyway,
            # or the process would go on pushing to a page that is gone.
            await self._leave()

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if getattr(self, "_behind", None) is not None:
            self._behind.cancel()
        if getattr(self, "subscribed", False):
            self.subscribed = False
            await project_hub().unsubscribe(self.project_id, self)
            await self.channel_layer.group_discard(self.access_group, self.channel_name)

    async def access_changed(self, message: dict) -> None:
        """The user's memberships or account changed: keep the socket only if still allowed."""
        allowed = await live_read(_still_allowed, self.scope["user"], self.project_id)
        if not allowed:
            await self.close(code=CLOSE_NO_ACCESS)

    async def access_ended(self, message: dict) -> None:
        """The user signed out: that browser session's sockets close (others stay)."""
        session = self.scope.get("session")
        if session is not None and session.session_key == message["session_key"]:
            await self.close(code=CLOSE_SIGNED_OUT)

    # --- what the hub hands over (dashboard/hub.py) ---------------------------------------

    async def take_push(self, message: Message, ids: list[int]) -> bool:
        if not self._synced:
            self._early.extend(ids)  # rendered for this page once its full view is out
            return False
        return await self._send_live(message)

    async def take_part(self, name: str, message: Message) -> bool:
        if not self._synced:
            self._parts_early.add(name)
            return False
        return await self._send_live(message)

    async def _send_live(self, message: Message) -> bool:
        if self._behind is not None:
            return False  # redrawn from the database once it reads again
        if self.raw is None:
            await self._send(message.text)
            return True
        if self.raw.backlog() > settings.ERRORSINK_LIVE_BACKLOG_BYTES:
            self._behind = asyncio.create_task(self._resync_once_read())
            return False
        if not self.raw.write(message.frame):
            await self._send(message.text)
        return True

    async def _resync_once_read(self) -> None:
        try:
            while self.raw.backlog() > 0:
                await asyncio.sleep(BEHIND_POLL_SECONDS)
            project_hub().stats.resyncs += 1
            await self._send_whole_view()
        finally:
            self._behind = None

    async def _send(self, html: str) -> None:
        if html:
            await self.send(text_data=html)

    # --- what each kind of page shows -----------------------------------------------------

    async def authorised(self, project) -> bool:
        """Whatever the page shows beyond its project exists in that project."""
        return True

    def view_key(self) -> Hashable | None:
        return None

    def wanted(self, events: list[StoredEvent]) -> list[int]:
        raise NotImplementedError

    async def parts_due(self, events: list[StoredEvent], quality_changed: bool) -> list[str]:
        return []

    def part_interval(self, name: str) -> float:
        raise NotImplementedError

    async def render_part(self, name: str) -> str:
        raise NotImplementedError

    async def sync_html(self) -> str:
        raise NotImplementedError

    async def sync_messages(self) -> list[str]:
        """The whole view, as one message per part: htmx parses a message that starts with a
        table row as table content, so rows and sections that hold tables go separately."""
        return [await self.sync_html()]

    async def push_html(self, ids: list[int]) -> str:
        raise NotImplementedError


class ProjectConsumer(_LiveConsumer):
    """The project's triage view: its issues (redrawn as new errors move the counts), its
    quality panel (redrawn when the rollups move) and its errors with the page's filters (new
    ones on top, unless the page shows older ones)."""

    SYNC = "dashboard/project.html#error-rows-sync"
    PUSH = "dashboard/project.html#error-rows-push"
    ALERTS = "dashboard/project.html#alerts-firing"
    ISSUES_REDRAW_SECONDS = 2.0

    async def connect(self) -> None:
        self.filters = filters_read(
            {k: v[0] for k, v in parse_qs(self.scope["query_string"].decode()).items()}
        )
        await super().connect()

    def view_key(self) -> Hashable:
        return ("project", tuple(sorted(self.filters.params.items())), self.quality_key())

    def wanted(self, events: list[StoredEvent]) -> list[int]:
        # A page of older errors (or up to a time) takes no new rows.
        return [] if self.filters.paged else _error_ids(events)

    async def parts_due(self, events: list[StoredEvent], quality_changed: bool) -> list[str]:
        due = ["issues"] if any(event.kind == Event.ERROR for event in events) else []
        return [*due, "quality"] if quality_changed else due

    def part_interval(self, name: str) -> float:
        if name == "quality":
            # A long window's figures barely move in seconds and cost the most to read.
            return REDRAW_SECONDS[self._window().name]
        return self.ISSUES_REDRAW_SECONDS

    async def render_part(self, name: str) -> str:
        if name == "quality":
            return await live_read(self._quality_panel)
        return await live_read(self._issue_table)

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
        """The issues, and the firing-alerts banner with them: the errors that move the
        counts are what make a rule fire."""
        firing = alerts_firing(project=self.project)
        context = {"project": self.project, "oob": True, "alerts_firing": firing}
        banner = render_to_string(self.ALERTS, context)
        return issue_table_html(project=self.project, filters=self.filters, oob=True) + banner

    async def authorised(self, project) -> bool:
        self.project = project
        return True

    def quality_key(self) -> tuple:
        # The panel's links and custom form carry the page's filters: pages share its bytes
        # only when those match too.
        return ("quality", self._window(), tuple(sorted(self.filters.params.items())))

    def _window(self) -> PanelWindow:
        return window_read(self.params)

    def _quality_panel(self) -> str:
        """The quality panel and the latency panel: both are figures of the rollups."""
        window = self._window()
        quality = panel_html(project_id=self.project_id, window=window,
                             params=self.filters.params, oob=True)  # fmt: skip
        return quality + latency_panel_html(project_id=self.project_id, window=window, oob=True)

    def _sync_read(self) -> tuple[list[int], list[str]]:
        """The page's errors and issues, and the panel again if the rollups moved since the
        page drew it (a reconnect after a drop; a fresh page's panel is already current)."""
        ids = self._latest_ids()
        drawn = self.params.get("rollups", "")
        panel = "" if drawn == str(rollups_watermark()) else self._quality_panel()
        self.params["rollups"] = ""  # a resync later on draws the panel again
        return ids, [self._issue_table(), panel]

    async def sync_messages(self) -> list[str]:
        ids, (issues, panel) = await live_read(self._sync_read)
        rendered = await row_html(ids)
        rows = [rendered[pk].html for pk in ids if pk in rendered]
        context = {"rows": rows, "filtered": self.filters.any_set, "project": self.project}
        # Sections together (they hold tables), rows apart (they are table content).
        return [issues + panel, render_to_string(self.SYNC, context)]

    async def push_html(self, ids: list[int]) -> str:
        # Pick the view's newest matching rows from cheap metadata; render only those.
        metas = [meta for meta in (await row_metas(ids)).values() if self._matches(meta)]
        if metas and self._database_decides():
            kept = await live_read(
                error_ids_matching, project_id=self.project_id, search=self.filters.errors,
                ids=[meta.pk for meta in metas],
            )  # fmt: skip
            metas = [meta for meta in metas if meta.pk in kept]
        if not metas:
            return ""
        metas.sort(key=lambda meta: meta.order, reverse=True)
        shown = [meta.pk for meta in metas[:LATEST_ERRORS]]
        rendered = await row_html(shown)
        # Checked again as read from the database: the notice's metadata is only a hint.
        rows = [rendered[pk].html for pk in shown
                if pk in rendered and self._matches(rendered[pk].meta)]  # fmt: skip
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

    def wanted(self, events: list[StoredEvent]) -> list[int]:
        return [event.pk for event in events]

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
        timeline = session_events(project_id=self.project_id, session_id=self.session_id,
                                  with_turns=True)  # fmt: skip
        self._timeline = timeline
        # What the limit counts: the events other than turns' spans (selectors.session_events).
        self._shown = sum(event.kind != Event.TURN for event in timeline.events)
        self._start = timeline.events[0].occurred_at if timeline.events else None
        self._last = None
        rows = self._rows(timeline_folded(timeline.events, project_id=self.project_id))
        return render_to_string(self.SYNC, {"rows": rows, "timeline": timeline})

    def _timeline_new(self, ids: list[int]) -> str:
        events = events_by_ids(ids=ids, project_id=self.project_id, session_id=self.session_id)
        if not events:
            return ""
        events.sort(key=lambda event: (event.occurred_at, event.pk))
        if self._last is None or (events[0].occurred_at, events[0].pk) < self._last:
            return self._timeline_all()
        if any(event.kind == Event.TURN for event in events):
            return self._timeline_all()  # a stage joins its turn's row, wherever that is
        if self._timeline.truncated:
            return ""  # after the cut; re-sending the cut list would not show them either
        if self._shown + len(events) > self._timeline.limit:
            return self._timeline_all()  # cut now: the page gets the cut list and its note
        self._shown += len(events)
        return render_to_string(self.PUSH, {"rows": self._rows(events)})

    async def sync_html(self) -> str:
        return await live_read(self._timeline_all)

    async def push_html(self, ids: list[int]) -> str:
        return await live_read(self._timeline_new, ids)


class IssueConsumer(_LiveConsumer):
    """One issue's figures and newest events, redrawn when events of it arrive: at most once a
    REDRAW_SECONDS, once more after the last, since a burst of one error is exactly when an
    issue page is open."""

    LIVE = "dashboard/issue.html#issue-live"
    REDRAW_SECONDS = 1.0

    async def authorised(self, project) -> bool:
        issue_id = self.scope["url_route"]["kwargs"]["issue_id"]
        self.project = project
        self.issue = await live_read(issue_get, project_id=project.id, issue_id=issue_id)
        return self.issue is not None

    def view_key(self) -> Hashable:
        return ("issue", self.issue.id, self._paged())

    def wanted(self, events: list[StoredEvent]) -> list[int]:
        return []  # nothing is appended: the part is redrawn whole

    async def parts_due(self, events: list[StoredEvent], quality_changed: bool) -> list[str]:
        ids = _error_ids(events)
        if ids and await live_read(self._has_events_of_issue, ids):
            return ["issue"]
        return []

    def part_interval(self, name: str) -> float:
        return self.REDRAW_SECONDS

    async def render_part(self, name: str) -> str:
        return await live_read(self._live_html)

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

    async def sync_html(self) -> str:
        return await live_read(self._live_html)

    async def push_html(self, ids: list[int]) -> str:
        return ""
