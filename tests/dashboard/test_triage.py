"""The project page as a triage view: issues and errors under one set of filters from the URL,
keyset paging, clear words for what it cannot use, and live updates of both lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from dashboard import live_rows
from dashboard.routing import websocket_urlpatterns
from errorsink.issues.models import Issue
from errorsink.live import EventsStored, group_name
from errorsink.sessions.models import Event
from tests.ingest_helpers import error_item, items_store
from tests.rollup_helpers import kept_stretch_reads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def triage(project):
    now = datetime.now(UTC)
    items_store(
        [
            error_item(
                project.id,
                code="AGENT_HANDLER_FAILED",
                session_id=f"s{n}",
                message=f"Handler failed after {n} ms",
                build_id="v1",
                customer_context={"plan": "pro"},
            )
            for n in range(30)
        ],
        received_at=now - timedelta(hours=2),
    )
    items_store([error_item(project.id, code="TOOL_CALL_FAILED", message="tool 'lookup' timed out",
                            build_id="v2")], received_at=now - timedelta(minutes=5))  # fmt: skip
    return {issue.code: issue for issue in Issue.objects.filter(project=project)}


def _page(client, project, **params) -> str:
    response = client.get(reverse("project", args=[project.id]), params)
    assert response.status_code == 200
    return response.content.decode()


def _issue_ids(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="issue-(\d+)"', page)]


def _error_count(page: str) -> int:
    return len(re.findall(r'<tr id="event-\d+"', page))


def test_it_lists_unresolved_issues_with_counts_beside_the_latest_errors(client, bob, triage,
                                                                         project):  # fmt: skip
    client.force_login(bob)
    page = _page(client, project)
    assert _issue_ids(page) == [triage["TOOL_CALL_FAILED"].id, triage["AGENT_HANDLER_FAILED"].id]
    row = re.search(rf'<tr id="issue-{triage["AGENT_HANDLER_FAILED"].id}".*?</tr>', page, re.S)
    assert re.findall(r'<td class="count">(\d+)</td>', row.group(0)) == ["30", "30"]
    assert 'class="sparkline"' in row.group(0)
    assert _error_count(page) == 20 and "Older errors →" in page


@pytest.mark.parametrize(
    ("params", "issues", "errors"),
    [
        ({"code": "tool"}, ["TOOL_CALL_FAILED"], 1),
        ({"q": "LOOKUP timed"}, ["TOOL_CALL_FAILED"], 1),
        ({"build_id": "v1"}, ["AGENT_HANDLER_FAILED"], 20),
        ({"since": "1h"}, ["TOOL_CALL_FAILED"], 1),
        ({"ctx": "plan=pro"}, ["TOOL_CALL_FAILED", "AGENT_HANDLER_FAILED"], 20),
        ({"source": "provisioning"}, ["TOOL_CALL_FAILED", "AGENT_HANDLER_FAILED"], 0),
    ],
)
def test_every_filter_comes_from_the_url(client, alice, triage, project, params, issues, errors):
    client.force_login(alice)
    page = _page(client, project, **params)
    assert _issue_ids(page) == [triage[code].id for code in issues]
    assert _error_count(page) == errors
    if not errors:
        assert "No errors match these filters." in page and "No errors yet" not in page


def test_status_tabs_and_sort(client, alice, triage, project):
    client.force_login(alice)
    Issue.objects.filter(id=triage["TOOL_CALL_FAILED"].id).update(status="resolved")
    assert _issue_ids(_page(client, project)) == [triage["AGENT_HANDLER_FAILED"].id]
    resolved = _page(client, project, status="resolved")
    assert _issue_ids(resolved) == [triage["TOOL_CALL_FAILED"].id]
    assert re.search(r'aria-current="page">Resolved<', resolved)
    everything = _page(client, project, status="all", sort="count")
    assert _issue_ids(everything) == [triage["AGENT_HANDLER_FAILED"].id,
                                      triage["TOOL_CALL_FAILED"].id]  # fmt: skip


def test_older_errors_page_by_keyset_and_keep_the_filters(client, alice, triage, project):
    client.force_login(alice)
    first = _page(client, project, build_id="v1")
    older = re.search(r'href="([^"]+)" rel="next">Older errors', first).group(1)
    older = older.replace("&amp;", "&")
    assert "build_id=v1" in older
    # New errors arrive in front meanwhile: the older page neither repeats nor skips a row.
    items_store([error_item(project.id, build_id="v1") for _ in range(5)])
    second = client.get(older).content.decode()
    shown = set(re.findall(r'<tr id="event-(\d+)"', first))
    rest = set(re.findall(r'<tr id="event-(\d+)"', second))
    assert len(rest) == 10 and not shown & rest
    assert "not live: older page" in second and 'id="live-status"' not in second


def test_a_bad_filter_is_said_and_left_out(client, alice, triage, project):
    client.force_login(alice)
    page = _page(client, project, since="last tuesday", cursor="garbage", status="open",
                 code="tool")  # fmt: skip
    assert "Left out since:" in page and "Left out cursor:" in page and "Left out status:" in page
    assert _issue_ids(page) == [triage["TOOL_CALL_FAILED"].id]  # the good filter still applies


def test_the_page_costs_a_fixed_number_of_queries(client, alice, triage, project,
                                                  django_assert_num_queries):  # fmt: skip
    client.force_login(alice)
    _page(client, project)
    # session, user, membership, errors, watermark, issues, their trends, 5 quality reads, the
    # Sentry key, the alert rules, the settings panel's three, the latency panel's turn counts,
    # and the 24-hour window's kept stretch: the same for 2 issues as 20. (The errors' read
    # runs in a transaction of its own with a planner setting: BEGIN, the setting, COMMIT.)
    with django_assert_num_queries(21 + kept_stretch_reads("24h")):
        _page(client, project)
    items_store([error_item(project.id, code=f"CODE_{n}", message="m") for n in range(18)])
    with django_assert_num_queries(21 + kept_stretch_reads("24h")):
        _page(client, project)


# --- live ------------------------------------------------------------------------------------

app = URLRouter(websocket_urlpatterns)


async def _connect(user, path: str) -> WebsocketCommunicator:
    """Connected, past the two messages of the sync: the issues (kept in ``sections``), then
    the error rows."""
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    communicator.sections = await communicator.receive_from()
    assert (await communicator.receive_from()).startswith('<tbody id="error-rows"')
    return communicator


async def _store_and_announce(project, **fields) -> Event:
    item = error_item(project.id, **fields)
    await database_sync_to_async(items_store)([item])
    event = await database_sync_to_async(Event.objects.get)(event_id=item["event_id"])
    await get_channel_layer().group_send(
        group_name(project.id), EventsStored.of([(event.pk, "error")]).encode()
    )
    return event


def test_new_errors_redraw_the_issue_counts(alice, triage, project):
    live_rows.cache_clear()
    handler = triage["AGENT_HANDLER_FAILED"]

    async def check() -> None:
        communicator = await _connect(alice, f"/ws/projects/{project.id}/")
        assert communicator.sections.startswith(
            '<section id="issue-table" class="issues-section" hx-swap-oob="true">'
        )
        await _store_and_announce(project, message="Handler failed after 5 ms",
                                  session_id="new-session")  # fmt: skip
        pushes = await communicator.receive_from(timeout=3)
        pushes += await communicator.receive_from(timeout=4)
        table = re.search(rf'<tr id="issue-{handler.id}".*?</tr>', pushes, re.S).group(0)
        assert re.findall(r'<td class="count">(\d+)</td>', table) == ["31", "31"]
        await communicator.disconnect()

    async_to_sync(check)()


def test_a_word_filtered_list_gets_only_matching_new_errors(alice, triage, project):
    live_rows.cache_clear()

    async def check() -> None:
        communicator = await _connect(alice, f"/ws/projects/{project.id}/?q=timed")
        await _store_and_announce(project, message="handler crashed")
        wanted = await _store_and_announce(project, message="tool 'x' timed out")
        received = ""
        while f'id="event-{wanted.pk}"' not in received:
            received += await communicator.receive_from(timeout=4)
        rows = re.findall(r'<tr id="event-(\d+)"', received)
        assert rows == [str(wanted.pk)]
        await communicator.disconnect()

    async_to_sync(check)()


def test_a_page_of_older_errors_gets_no_new_rows(alice, triage, project):
    live_rows.cache_clear()

    async def check() -> None:
        communicator = await _connect(alice, f"/ws/projects/{project.id}/?until=2030-01-01")
        await _store_and_announce(project, message="late")
        received = await communicator.receive_from(timeout=4)  # the issue counts only
        assert 'id="issue-table"' in received and 'id="event-' not in received
        await communicator.disconnect()

    async_to_sync(check)()
