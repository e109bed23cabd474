"""An open socket loses access with its user (issue 14): removed from the project, account
deactivated, signed out. Over the real Redis channel layer, each socket of the project's pages
closes with a code the page explains; other users and other browser sessions keep theirs."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from dashboard.access_live import CLOSE_NO_ACCESS, CLOSE_SIGNED_OUT
from errorsink.projects.models import Membership
from tests.dashboard.test_consumers import _connect, run

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed_with(communicator, timeout: float = 3) -> int | None:
    """The close code, after whatever the page was still being sent (its first rows)."""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message.get("code")


async def _open(user, path: str, **kwargs):
    communicator, connected = await _connect(user, path, **kwargs)
    assert connected
    return communicator


async def _still_open(communicator, seconds: float = 1.0) -> bool:
    """Whether no close arrives within ``seconds`` (the page's own rows may still come)."""
    while not await communicator.receive_nothing(timeout=seconds):
        if (await communicator.receive_output())["type"] == "websocket.close":
            return False
    return True


def _session(user) -> SessionStore:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session.create()
    return session


@run
async def test_removing_a_member_closes_their_sockets_and_no_one_elses(alice, bob, project):
    bobs = await _open(bob, f"/ws/projects/{project.id}/")
    bobs_timeline = await _open(bob, f"/ws/projects/{project.id}/sessions/s1/")
    alices = await _open(alice, f"/ws/projects/{project.id}/")
    await database_sync_to_async(Membership.objects.filter(user=bob, project=project).delete)()
    assert await _closed_with(bobs) == CLOSE_NO_ACCESS
    assert await _closed_with(bobs_timeline) == CLOSE_NO_ACCESS
    assert await _still_open(alices)
    reconnected, connected = await _connect(bob, f"/ws/projects/{project.id}/")
    assert not connected  # and no way back in
    await alices.disconnect()


@run
async def test_a_role_change_keeps_the_socket_open(bob, project):
    bobs, _ = await _connect(bob, f"/ws/projects/{project.id}/")
    await database_sync_to_async(Membership.objects.filter(user=bob, project=project).update)(
        role=Membership.OWNER
    )  # an update() sends no signal: the save below does
    membership = await database_sync_to_async(Membership.objects.get)(user=bob, project=project)
    await database_sync_to_async(membership.save)()
    assert await _still_open(bobs)
    await bobs.disconnect()


@run
async def test_deactivating_an_account_closes_its_sockets(bob, project):
    bobs = await _open(bob, f"/ws/projects/{project.id}/")
    bob.is_active = False
    await database_sync_to_async(bob.save)()
    assert await _closed_with(bobs) == CLOSE_NO_ACCESS


@run
async def test_signing_out_closes_that_browser_sessions_sockets_only(bob, project):
    laptop, phone = await database_sync_to_async(_session)(bob), \
        await database_sync_to_async(_session)(bob)  # fmt: skip
    sockets = []
    for session in (laptop, phone):
        sockets.append(await _open(bob, f"/ws/projects/{project.id}/", session=session))
    request = RequestFactory().post("/logout/")
    request.session = laptop

    def sign_out() -> None:
        user_logged_out.send(sender=type(bob), request=request, user=bob)

    await database_sync_to_async(sign_out)()
    assert await _closed_with(sockets[0]) == CLOSE_SIGNED_OUT
    assert await _still_open(sockets[1])
    await sockets[1].disconnect()


@run
async def test_pages_stop_saying_live_while_postgresql_does_not_answer(alice, project,
                                                                       monkeypatch):  # fmt: skip
    from dashboard import hub

    monkeypatch.setattr(hub, "HEALTH_SECONDS", 0.2)
    monkeypatch.setattr(hub, "_database_answers", lambda: False)
    page, connected = await _connect(alice, f"/ws/projects/{project.id}/")
    assert connected
    # Closed as an outage: the page's script says "reconnecting…" and the extension retries.
    assert await _closed_with(page) == hub.CLOSE_OUTAGE
