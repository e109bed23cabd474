"""The live consumers in-process, over the real Redis channel layer and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import math
import re
import time
from datetime import timedelta
from functools import wraps

import pytest
from asgiref.sync import async_to_sync
from channels.auth import UserLazyObject
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from dashboard import hub, live_rows
from dashboard.quality_panel import REDRAW_SECONDS
from dashboard.routing import websocket_urlpatterns
from errorsink.live import EventsStored, QualityUpdated, epoch_us, group_name, stored_error
from errorsink.quality.rollups import rollups_watermark
from errorsink.sessions.models import Event
from tests.rollup_helpers import roll_up

from .conftest import event_create

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


def run(coro_fn):
    """Run an async test body on its own loop (no pytest-asyncio here)."""

    @wraps(coro_fn)
    def wrapper(*args, **kwargs):
        live_rows.cache_clear()
        return async_to_sync(coro_fn)(*args, **kwargs)

    return wrapper


async def _connect(user, path: str, session=None) -> tuple[WebsocketCommunicator, bool]:
    """Connected, with a project page's issue list (its first message, with the quality panel
    when that is stale) already received in ``communicator.sections``."""
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = _lazy(user)
    if session is not None:
        communicator.scope["session"] = session
    connected, _ = await communicator.connect()
    if connected and "/sessions/" not in path:
        communicator.sections = await communicator.receive_from(timeout=5)
        assert communicator.sections.startswith('<section id="issue-table"')
    return communicator, connected


def _lazy(user) -> UserLazyObject:
    """The user as Channels' AuthMiddleware puts it in the scope: a lazy wrapper, whose type
    is not the user model's (a consumer calling ``type(user).objects`` broke on it)."""
    lazy = UserLazyObject()
    lazy._wrapped = user
    return lazy


def _row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="event-(\d+)"', html)]


def _timeline_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'id="tl-event-(\d+)"', html)]


async def _store(project, **fields) -> Event:
    """Store an event and announce it the way the ingest worker does."""
    event = await database_sync_to_async(event_create)(project, **fields)
    await _announce(project, [_announced(event)])
    return event


def _announced(event: Event) -> tuple:
    """An event as the worker's notice carries it: an error with its hints."""
    if event.kind != Event.ERROR:
        return (event.pk, event.kind)
    return stored_error(event.pk, event.code, event.source, epoch_us(event.received_at))


async def _announce(project, events: list[tuple]) -> None:
    """The message the worker's notifier sends, on the project's group."""
    await get_channel_layer().group_send(group_name(project.id), EventsStored.of(events).encode())


# --- access ----------------------------------------------------------------------------------


@run
async def test_it_refuses_anonymous_users_and_outsiders(charlie, project):
    for who in [AnonymousUser(), charlie]:
        await _refused(who, project)


async def _refused(who, project):
    for path in [f"/ws/projects/{project.id}/", f"/ws/projects/{project.id}/sessions/s1/"]:
        communicator, connected = await _connect(who, path)
        assert not connected
        await communicator.disconnect()


@run
async def test_it_accepts_members(alice, bob, project):
    for user in [alice, bob]:
        communicator, connected = await _connect(user, f"/ws/projects/{project.id}/")
        assert connected
        sync = await communicator.receive_from(timeout=5)
        assert sync.startswith('<tbody id="error-rows" hx-swap-oob="true">')
        assert 'class="empty-row"' in sync
        await communicator.disconnect()


# --- project error list ----------------------------------------------------------------------


@run
async def test_it_sends_the_whole_table_on_connect_and_new_errors_on_top(alice, project):
    now = timezone.now()
    old = [
        await database_sync_to_async(event_create)(project, received_at=now + timedelta(seconds=i))
        for i in range(22)
    ]
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")

    sync = await communicator.receive_from(timeout=5)
    assert _row_ids(sync) == [e.pk for e in reversed(old)][:20]

    new = await _store(project, message="fresh <b>one</b>")
    push = await communicator.receive_from(timeout=2)
    assert push.startswith('<tbody hx-swap-oob="afterbegin:#error-rows">')
    assert _row_ids(push) == [new.pk]
    assert "fresh &lt;b&gt;one&lt;/b&gt;" in push
    await communicator.disconnect()


@run
async def test_it_pushes_the_same_markup_as_the_page(alice, project, client):
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)
    event = await _store(project)
    push = await communicator.receive_from(timeout=2)
    await communicator.disconnect()

    await database_sync_to_async(client.force_login)(alice)
    page = (await database_sync_to_async(client.get)(f"/projects/{project.id}/")).content.decode()
    row = re.search(rf'<tr id="event-{event.pk}".*?</tr>', page, re.S).group(0)
    assert row in push


@run
async def test_it_ignores_non_errors_and_other_projects(alice, project):
    from errorsink.projects.services import project_create

    other = await database_sync_to_async(project_create)(name="Other", owner=alice)
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)

    await _store(project, kind=Event.WARNING, code="31002")
    event = await database_sync_to_async(event_create)(other)
    # A forged message naming another project's event in this project's group shows nothing,
    # with or without hints that say it is an error of this project's.
    await _announce(project, [(event.pk, "error")])
    await _announce(project, [_announced(event)])
    # Pushes keep their order: the first to arrive is the one for the error sent last.
    wanted = await _store(project)
    assert _row_ids(await communicator.receive_from(timeout=2)) == [wanted.pk]
    await communicator.disconnect()


@run
async def test_it_applies_the_pages_filter_to_live_rows(alice, project):
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/?code=RUNNER_INTERNAL")
    await communicator.receive_from(timeout=5)

    await _store(project, code="AGENT_CHILD_CRASHED")
    wanted = await _store(project, code="RUNNER_INTERNAL", source="runner")
    assert _row_ids(await communicator.receive_from(timeout=2)) == [wanted.pk]
    await communicator.disconnect()

    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/?source=client")
    assert _row_ids(await communicator.receive_from(timeout=5)) == []
    await _store(project, code="RUNNER_INTERNAL", source="runner")
    wanted = await _store(project, code="WEBRTC_CONNECTION_FAILED", source="client")
    assert _row_ids(await communicator.receive_from(timeout=2)) == [wanted.pk]
    await communicator.disconnect()


@run
async def test_it_skips_a_message_it_does_not_understand_and_keeps_relaying(alice, project):
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)
    await get_channel_layer().group_send(
        group_name(project.id), {"type": "events.stored", "events": "not a list"}
    )
    wanted = await _store(project)
    assert _row_ids(await communicator.receive_from(timeout=2)) == [wanted.pk]
    await communicator.disconnect()


@run
async def test_it_coalesces_a_burst_into_a_few_pushes(alice, project):
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)

    events = [await database_sync_to_async(event_create)(project) for _ in range(30)]
    started = time.monotonic()
    for event in events:  # 30 separate notifications, as fast as the machine sends them
        await _announce(project, [(event.pk, event.kind)])
    sending = time.monotonic() - started
    pushes = [await communicator.receive_from(timeout=2)]
    while events[-1].pk not in _row_ids(pushes[-1]):  # pushes keep the order of the events
        pushes.append(await communicator.receive_from(timeout=2))
    # Nothing more comes of the burst: the next push is the one for an error sent after it.
    after = await _store(project)
    assert _row_ids(await communicator.receive_from(timeout=2)) == [after.pk]

    # At most one push per coalescing interval while the burst lasts, plus the first (sent at
    # once) and the last (after it): a few on a quiet machine, never one per notification.
    allowed = max(3, math.ceil(sending / hub.COALESCE_SECONDS) + 2)
    assert 1 <= len(pushes) <= min(allowed, 10), (len(pushes), sending)
    shown = [pk for push in pushes for pk in _row_ids(push)]
    assert events[-1].pk in _row_ids(pushes[-1])
    assert _row_ids(pushes[-1])[0] == events[-1].pk  # newest on top
    assert len(set(shown)) >= 20
    await communicator.disconnect()


@run
async def test_it_fetches_rows_once_for_all_open_pages(alice, bob, project, monkeypatch):
    calls = []
    for cache in (live_rows._metas, live_rows._html):
        real = cache.fetch
        monkeypatch.setattr(cache, "fetch", lambda ids, real=real: calls.append(ids) or real(ids))
    pages = [(await _connect(alice if i % 2 else bob, f"/ws/projects/{project.id}/"))[0]
             for i in range(10)]  # fmt: skip
    for page in pages:
        await page.receive_from()
    calls.clear()

    event = await _store(project)
    pushes = [await page.receive_from(timeout=2) for page in pages]

    assert all(_row_ids(push) == [event.pk] for push in pushes)
    assert calls == [[event.pk]]  # one render for all ten; the notice brought the metadata

    # A notice without hints (an older worker's): one metadata query more, still for all ten.
    calls.clear()
    event = await database_sync_to_async(event_create)(project)
    await _announce(project, [(event.pk, event.kind)])
    pushes = [await page.receive_from(timeout=2) for page in pages]
    assert all(_row_ids(push) == [event.pk] for push in pushes)
    assert calls == [[event.pk], [event.pk]]
    for page in pages:
        await page.disconnect()


@run
async def test_it_resyncs_on_reconnect_so_nothing_is_missed(alice, project):
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)
    await communicator.disconnect()

    missed = await database_sync_to_async(event_create)(project)  # stored while disconnected

    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    assert _row_ids(await communicator.receive_from(timeout=5)) == [missed.pk]
    await communicator.disconnect()


# --- session timeline ------------------------------------------------------------------------


@run
async def test_it_appends_new_events_of_the_session_to_its_timeline(alice, project):
    start = timezone.now()
    first = await database_sync_to_async(event_create)(project, session_id="s1", occurred_at=start)
    communicator, connected = await _connect(alice, f"/ws/projects/{project.id}/sessions/s1/")
    assert connected
    sync = await communicator.receive_from(timeout=5)
    assert sync.startswith('<ol id="timeline-rows" hx-swap-oob="true">')
    assert f'id="tl-event-{first.pk}"' in sync

    await _store(project, session_id="other")
    later = await _store(project, session_id="s1", kind=Event.WARNING, code="31002",
                         occurred_at=start + timedelta(seconds=3))  # fmt: skip
    push = await communicator.receive_from(timeout=2)  # the other session's event never shows
    assert _timeline_ids(push) == [later.pk]
    assert push.startswith('<ol hx-swap-oob="beforeend:#timeline-rows">')
    assert f'id="tl-event-{later.pk}"' in push and "+0:03.000" in push

    earlier = await _store(project, session_id="s1", occurred_at=start - timedelta(seconds=1))
    resync = await communicator.receive_from(timeout=2)
    assert resync.startswith('<ol id="timeline-rows" hx-swap-oob="true">')
    order = re.findall(r'id="tl-event-(\d+)"', resync)
    assert order == [str(earlier.pk), str(first.pk), str(later.pk)]
    await communicator.disconnect()


@run
async def test_a_turn_redraws_the_timeline_with_its_stage_folded_into_it(alice, project):
    """A stage's span may arrive after its turn's: the page is redrawn, so the stage joins the
    turn's row instead of standing alone at the end."""
    start = timezone.now()
    first = await database_sync_to_async(event_create)(project, session_id="s1", occurred_at=start)
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/sessions/s1/")
    await communicator.receive_from(timeout=5)
    trace, span = "f" * 32, "1" * 16
    turn = await _store(
        project,
        session_id="s1",
        kind=Event.TURN,
        code="turn",
        name="Turn 2",
        occurred_at=start + timedelta(seconds=2),
        details={
            "metrics": {"voice_to_voice_ms": 1400},
            "turn": {"trace_id": trace, "span_id": span, "number": 2},
        },
    )
    sync = await communicator.receive_from(timeout=2)
    assert sync.startswith('<ol id="timeline-rows" hx-swap-oob="true">')
    assert _timeline_ids(sync) == [first.pk, turn.pk] and "1,400 ms" in sync
    stage = await _store(project, session_id="s1", kind=Event.TURN, code="llm",
                         occurred_at=start + timedelta(seconds=2),
                         details={"metrics": {"llm_ms": 640},
                                  "turn": {"trace_id": trace, "span_id": "2" * 16,
                                           "parent_span_id": span}})  # fmt: skip
    sync = await communicator.receive_from(timeout=2)
    assert _timeline_ids(sync) == [first.pk, turn.pk] and stage.pk not in _timeline_ids(sync)
    assert "LLM first token" in sync and "640 ms" in sync
    await communicator.disconnect()


@run
async def test_it_keeps_a_timeline_cut_at_its_limit_cut(alice, project, monkeypatch):
    from errorsink.sessions import selectors

    monkeypatch.setattr(selectors, "SESSION_EVENTS_MAX", 2)
    start = timezone.now()
    at = lambda seconds: start + timedelta(seconds=seconds)  # noqa: E731
    first = await database_sync_to_async(event_create)(project, session_id="s1", occurred_at=at(0))
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/sessions/s1/")
    assert "timeline-cut" not in await communicator.receive_from(timeout=5)

    second = await _store(project, session_id="s1", occurred_at=at(1))
    push = await communicator.receive_from(timeout=2)
    assert _timeline_ids(push) == [second.pk] and "timeline-cut" not in push

    await _store(project, session_id="s1", occurred_at=at(2))  # one more than the page may show
    resync = await communicator.receive_from(timeout=2)
    assert resync.startswith('<ol id="timeline-rows" hx-swap-oob="true">')
    assert _timeline_ids(resync) == [first.pk, second.pk]
    assert resync.endswith("</li></ol>") and 'id="timeline-cut"' in resync

    # A project page sees each push go out, so the next event cannot be merged into it.
    page, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await page.receive_from()
    beyond = await _store(project, session_id="s1", occurred_at=at(3))  # after the cut: not shown
    assert _row_ids(await page.receive_from(timeout=2)) == [beyond.pk]
    earlier = await _store(project, session_id="s1", occurred_at=at(-1))  # before it: shown
    resync = await communicator.receive_from(timeout=2)
    assert _timeline_ids(resync) == [earlier.pk, first.pk] and 'id="timeline-cut"' in resync
    await page.disconnect()
    await communicator.disconnect()


@run
async def test_it_renders_only_the_rows_a_page_shows(alice, project, monkeypatch):
    rendered = []
    real = live_rows._html.fetch
    monkeypatch.setattr(live_rows._html, "fetch", lambda ids: rendered.extend(ids) or real(ids))
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)
    events = [await database_sync_to_async(event_create)(project) for _ in range(60)]
    await _announce(project, [(e.pk, e.kind) for e in events])
    push = await communicator.receive_from(timeout=2)
    assert _row_ids(push) == [e.pk for e in reversed(events)][:20]
    assert sorted(rendered) == sorted(e.pk for e in events[-20:])
    await communicator.disconnect()


@run
async def test_cached_rows_stay_out_of_sight_of_the_collector(alice, project):
    # Each full collection walks every tracked object while the pages wait: cached rows must be
    # plain tuples of atoms, which the collector stops tracking once it has seen them.
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/")
    await communicator.receive_from(timeout=5)
    event = await _store(project)
    assert _row_ids(await communicator.receive_from(timeout=2)) == [event.pk]
    gc.collect()
    cached = [*live_rows._metas.items.values(), *live_rows._html.items.values()]
    assert len(cached) == 2
    assert [value for value in cached if gc.is_tracked(value)] == []
    await communicator.disconnect()


@run
async def test_it_joins_the_group_once_per_process_however_many_pages(alice, project):
    from dashboard.hub import project_hub

    pages = [(await _connect(alice, f"/ws/projects/{project.id}/"))[0] for _ in range(5)]
    hub = project_hub()
    assert list(hub.projects) == [str(project.id)]
    assert len(hub.projects[str(project.id)].subscribers) == 5
    for page in pages[:4]:
        await page.disconnect()
    assert str(project.id) in hub.projects
    await pages[4].disconnect()
    assert hub.projects == {}


# --- quality panel ---------------------------------------------------------------------------


async def _rolled_up_warning(project, code: str = "31002") -> int:
    """A warning stored and counted by the rollups; returns their watermark."""
    await database_sync_to_async(event_create)(project, kind=Event.WARNING, code=code,
                                               session_id="w1")  # fmt: skip
    await database_sync_to_async(roll_up)()
    return await database_sync_to_async(rollups_watermark)()


@run
async def test_it_redraws_the_panel_when_the_rollups_move(alice, project):
    drawn = await database_sync_to_async(rollups_watermark)()
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/?window=1h&rollups={drawn}")
    sync = await communicator.receive_from(timeout=5)
    assert "quality-panel" not in sync  # the page it belongs to drew a current one

    await _rolled_up_warning(project)
    await get_channel_layer().group_send(group_name(project.id), QualityUpdated().encode())
    push = await communicator.receive_from(timeout=3)
    assert push.startswith('<section id="quality-panel"') and 'hx-swap-oob="true"' in push
    assert 'data-window="1h"' in push and "HIGH_JITTER" in push
    assert "Warnings per minute" in push
    await communicator.disconnect()


@run
async def test_a_reconnect_after_the_rollups_moved_gets_the_panel_again(alice, project):
    drawn = await database_sync_to_async(rollups_watermark)()
    await _rolled_up_warning(project)
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/?rollups={drawn}")
    sync = await communicator.receive_from(timeout=5)
    assert sync.startswith('<tbody id="error-rows"')
    sections = communicator.sections
    panel = sections[sections.index('<section id="quality-panel"') :]
    assert 'data-window="24h"' in panel and "HIGH_JITTER" in panel
    await communicator.disconnect()


@run
async def test_the_session_timeline_ignores_quality_notices(alice, project):
    await database_sync_to_async(event_create)(project, session_id="s1")
    communicator, _ = await _connect(alice, f"/ws/projects/{project.id}/sessions/s1/")
    await communicator.receive_from(timeout=5)
    await get_channel_layer().group_send(group_name(project.id), QualityUpdated().encode())
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


def test_a_long_window_is_redrawn_at_most_once_per_interval(alice, project, monkeypatch):
    monkeypatch.setitem(REDRAW_SECONDS, "7d", 0.8)

    @run
    async def body():
        drawn = await database_sync_to_async(rollups_watermark)()
        communicator, _ = await _connect(
            alice, f"/ws/projects/{project.id}/?window=7d&rollups={drawn}"
        )
        await communicator.receive_from(timeout=5)
        notice = QualityUpdated().encode()
        await _rolled_up_warning(project, code="31001")
        await get_channel_layer().group_send(group_name(project.id), notice)
        await _rolled_up_warning(project, code="31003")
        await get_channel_layer().group_send(group_name(project.id), notice)
        # Nothing while the page's panel is fresh; then one redraw with both changes.
        assert await communicator.receive_nothing(timeout=0.5)
        push = await communicator.receive_from(timeout=3)
        assert 'data-window="7d"' in push and "HIGH_RTT" in push and "HIGH_PACKET_LOSS" in push
        assert await communicator.receive_nothing(timeout=1)
        await communicator.disconnect()

    body()


def test_a_slow_panel_redraw_never_holds_up_new_rows(alice, project, monkeypatch):
    def slow_panel(self) -> str:
        time.sleep(1.5)  # a month of figures at millions of events
        return '<section id="quality-panel" hx-swap-oob="true">slow</section>'

    monkeypatch.setattr("dashboard.consumers.ProjectConsumer._quality_panel", slow_panel)

    @run
    async def body():
        drawn = await database_sync_to_async(rollups_watermark)()
        communicator, _ = await _connect(
            alice, f"/ws/projects/{project.id}/?window=1h&rollups={drawn}"
        )
        await communicator.receive_from(timeout=5)
        layer = get_channel_layer()
        await layer.group_send(group_name(project.id), QualityUpdated().encode())
        await asyncio.sleep(0.2)  # the redraw has started
        event = await _store(project, message="while the panel is read")
        first = await communicator.receive_from(timeout=3)
        assert _row_ids(first) == [event.pk]  # the row first, though announced after
        assert "slow" in await communicator.receive_from(timeout=3)
        await communicator.disconnect()

    body()


async def _settled(project) -> None:
    """Until the project's push and the redraws it asked for are done."""
    relay = hub.project_hub().projects[str(project.id)]
    for _ in range(500):
        tasks = [r.task for view in relay.views.values() for r in view.redraws.values()]
        if relay.flusher is None and all(t is None or t.done() for t in tasks):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the push never settled")


def test_one_push_costs_the_same_queries_for_1_and_for_50_pages_of_a_view(
    alice, project, monkeypatch
):
    """Rows and the issue table are read and rendered once per view, not once per page."""
    from dashboard import consumers, live_db

    monkeypatch.setattr(consumers.ProjectConsumer, "ISSUES_REDRAW_SECONDS", 0.0)

    async def one_push(pages: list) -> tuple[int, int]:
        """Queries and renders of the push of one new error: its row on every page, and the
        issue table redrawn (sent only if it changed)."""
        live_rows.cache_clear()
        queries, renders = live_db.queries_run(), hub.project_hub().stats.renders
        event = await _store(project)
        for page in pages:
            assert _row_ids(await page.receive_from(timeout=5)) == [event.pk]
        await _settled(project)
        for page in pages:  # an issue table the redraw sent, if it changed
            while not await page.receive_nothing(timeout=0.01):
                assert (await page.receive_from()).startswith('<section id="issue-table"')
        return live_db.queries_run() - queries, hub.project_hub().stats.renders - renders

    @run
    async def body():
        path = f"/ws/projects/{project.id}/?window=24h"
        pages = [(await _connect(alice, path))[0]]
        await pages[0].receive_from(timeout=5)
        await one_push(pages)  # the issue's first error creates it: not a steady push
        alone = await one_push(pages)
        for _ in range(49):
            page, _ = await _connect(alice, path)
            await page.receive_from(timeout=5)
            pages.append(page)
        assert len(hub.project_hub().projects[str(project.id)].views) == 1
        together = await one_push(pages)
        assert alone == together and alone[0] > 0, (alone, together)
        assert together[1] == 2  # the rows, the issue table
        for page in pages:
            await page.disconnect()

    body()


def test_the_firing_alerts_banner_is_redrawn_with_the_issues(alice, project, monkeypatch):
    from dashboard import consumers
    from errorsink.alerts.models import AlertRule

    monkeypatch.setattr(consumers.ProjectConsumer, "ISSUES_REDRAW_SECONDS", 0.0)

    @run
    async def body():
        page, _ = await _connect(alice, f"/ws/projects/{project.id}/")
        await page.receive_from(timeout=5)
        await database_sync_to_async(AlertRule.objects.create)(
            project=project, name="Crash <storm>", kind="new_issue",
            condition={"type": "new_issue"}, channels=[], last_fired_at=timezone.now(),
        )  # fmt: skip
        event = await _store(project)
        assert _row_ids(await page.receive_from(timeout=5)) == [event.pk]
        redraw = await page.receive_from(timeout=5)
        assert redraw.startswith('<section id="issue-table"')
        banner = redraw[redraw.index('<div id="alerts-firing" hx-swap-oob="true">') :]
        assert "Firing:" in banner and "Crash &lt;storm&gt;" in banner
        await page.disconnect()

    body()


def test_pages_with_other_filters_form_views_of_their_own(alice, project):
    @run
    async def body():
        plain = [(await _connect(alice, f"/ws/projects/{project.id}/"))[0] for _ in range(3)]
        runner = (await _connect(alice, f"/ws/projects/{project.id}/?source=runner"))[0]
        for page in [*plain, runner]:
            await page.receive_from(timeout=5)
        views = hub.project_hub().projects[str(project.id)].views
        assert sorted(len(view.pages) for view in views.values()) == [1, 3]

        client_error = await _store(project, source="client")
        runner_error = await _store(project, code="RUNNER_INTERNAL", source="runner")
        for page in plain:
            pushed = [await page.receive_from(timeout=5) for _ in range(2)]
            rows = [pk for push in pushed for pk in _row_ids(push)]
            assert set(rows) == {client_error.pk, runner_error.pk}
        assert _row_ids(await runner.receive_from(timeout=5)) == [runner_error.pk]
        for page in [*plain, runner]:
            await page.disconnect()
        assert str(project.id) not in hub.project_hub().projects

    body()


@pytest.mark.pure
def test_a_channel_layer_call_is_tried_again_on_a_fresh_connection_after_a_lost_one():
    """After Redis restarts, the layer's first call meets a dead pooled connection."""
    import asyncio

    import redis

    from dashboard.hub import layer_call

    calls = []

    async def group_add() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise redis.exceptions.ConnectionError("Connection closed by server.")
        return "joined"

    assert asyncio.run(layer_call(group_add)) == "joined" and len(calls) == 2
