"""An issue's page and its status buttons, as alice (owner), bob (member) and charlie (outsider),
and its live socket over the real channel layer."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from dashboard.routing import websocket_urlpatterns
from errorsink.issues.models import Issue
from errorsink.live import EventsStored, group_name
from errorsink.sessions.models import Event
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def issue(project) -> Issue:
    items = [
        error_item(project.id, message=f"Handler failed after {n} ms", session_id=f"call-{n % 3}",
                   build_id="v7")
        for n in range(25)
    ]  # fmt: skip
    items_store(items)
    return Issue.objects.get(project=project)


def _url(issue, **params) -> str:
    url = reverse("issue", args=[issue.project_id, issue.id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_it_shows_an_issue_to_its_projects_members(client, alice, bob, issue):
    for user in (alice, bob):
        client.force_login(user)
        page = client.get(_url(issue)).content.decode()
        assert '<h1 class="issue-title">Handler failed after 0 ms</h1>' in page  # its first words
        assert re.search(r'id="issue-count">25<', page)
        assert re.search(r'id="issue-sessions">3<', page)
        assert "message: Handler failed after &lt;num&gt; ms" in page  # why grouped
        assert "<code>v7</code>" in page
        assert page.count('<tr data-event="') == 20
        assert "Older →" in page
        assert reverse("session-timeline", args=[issue.project_id, "call-1"]) in page


def test_it_hides_an_issue_from_everyone_else(client, charlie, issue, project):
    assert client.get(_url(issue)).status_code == 302  # to sign-in
    client.force_login(charlie)
    assert client.get(_url(issue)).status_code == 404
    status_url = reverse("issue-status-change", args=[project.id, issue.id])
    assert client.post(status_url, {"status": "resolved"}).status_code == 404
    assert Issue.objects.get(id=issue.id).status == "unresolved"
    # Another project's issue through this project's URL is no issue either.
    client.force_login(charlie)
    assert client.get(reverse("issue", args=[project.id, 10**20])).status_code == 404


def test_it_pages_its_events_and_refuses_a_bad_cursor(client, alice, issue):
    client.force_login(alice)
    page = client.get(_url(issue)).content.decode()
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    rest = client.get(older).content.decode()
    assert rest.count('<tr data-event="') == 5
    assert "Handler failed after 1 ms" in rest and 'rel="next"' not in rest
    response = client.get(_url(issue, cursor="garbage"), follow=True)
    assert response.status_code == 200
    assert "not valid any more" in response.content.decode()


def test_members_resolve_ignore_and_reopen(client, bob, issue, project):
    client.force_login(bob)
    status_url = reverse("issue-status-change", args=[project.id, issue.id])
    response = client.post(status_url, {"status": "resolved"})
    assert response.status_code == 302 and response.url == _url(issue)
    assert Issue.objects.get(id=issue.id).status == "resolved"
    page = client.get(_url(issue)).content.decode()
    assert "Issue marked resolved." in page
    # Every action is drawn; the stylesheet hides the current status's (see the browser test).
    assert 'class="badge status-resolved"' in page
    assert all(f'class="to-{status}"' in page for status in ("unresolved", "resolved", "ignored"))
    client.post(status_url, {"status": "ignored", "next": "project"})
    assert Issue.objects.get(id=issue.id).status == "ignored"
    client.post(status_url, {"status": "closed"})
    assert Issue.objects.get(id=issue.id).status == "ignored"
    assert client.get(status_url).status_code == 405


def test_it_escapes_what_events_say(client, alice, project):
    items_store([error_item(project.id, message="<script>alert(1)</script> failed",
                            session_id="<img src=x>", build_id="<b>v</b>")])  # fmt: skip
    issue = Issue.objects.get(project=project)
    client.force_login(alice)
    page = client.get(_url(issue)).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x>" not in page and "<b>v</b>" not in page


# --- live ------------------------------------------------------------------------------------

app = URLRouter(websocket_urlpatterns)


async def _connect(user, path: str) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


def test_its_socket_refuses_outsiders_and_other_projects_issues(charlie, alice, issue, project):
    from errorsink.projects.services import project_create

    theirs = project_create(name="theirs", owner=charlie)

    async def check() -> None:
        for who, path in [
            (AnonymousUser(), f"/ws/projects/{project.id}/issues/{issue.id}/"),
            (charlie, f"/ws/projects/{project.id}/issues/{issue.id}/"),
            (charlie, f"/ws/projects/{theirs.id}/issues/{issue.id}/"),
            (alice, f"/ws/projects/{project.id}/issues/{issue.id + 1000}/"),
        ]:
            communicator, connected = await _connect(who, path)
            assert not connected, path
            await communicator.disconnect()

    async_to_sync(check)()


def test_its_socket_redraws_the_figures_when_the_issue_has_a_new_event(alice, issue, project):
    async def check() -> None:
        communicator, connected = await _connect(
            alice, f"/ws/projects/{project.id}/issues/{issue.id}/"
        )
        assert connected
        sync = await communicator.receive_from()
        assert 'id="issue-summary" class="issue-summary" hx-swap-oob="true"' in sync
        assert re.search(r'id="issue-count">25<', sync)
        # Another issue's error: nothing to redraw.
        await database_sync_to_async(items_store)(
            [error_item(project.id, code="OTHER", message="other")]
        )
        other = await database_sync_to_async(Event.objects.get)(code="OTHER")
        await _announce(project, [(other.pk, "error")])
        assert await communicator.receive_nothing(timeout=1.5)
        await database_sync_to_async(items_store)(
            [error_item(project.id, message="Handler failed after 99 ms", session_id="new")]
        )
        new = await database_sync_to_async(Event.objects.get)(session_id="new")
        await _announce(project, [(new.pk, "error")])
        push = await communicator.receive_from(timeout=3)
        assert re.search(r'id="issue-count">26<', push)
        assert re.search(r'id="issue-sessions">4<', push)
        assert f'data-event="{new.pk}"' in push
        await communicator.disconnect()

    async_to_sync(check)()


async def _announce(project, events: list[tuple[int, str]]) -> None:
    await get_channel_layer().group_send(group_name(project.id), EventsStored.of(events).encode())
