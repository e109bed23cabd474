"""Django's side of the ASGI application (config/asgi.py): the middleware chain and the view run
as one synchronous call, without going back to the event loop in between (the loop also pushes
to the live pages)."""

from __future__ import annotations

import threading

import pytest
from asgiref import sync
from django.urls import reverse

from tests.api.conftest import assert_envelope
from tests.door_client import DoorClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_the_test_connection")]


@pytest.fixture
def bounces(monkeypatch) -> list[int]:
    """The threads that went from sync code back to async code (asgiref's AsyncToSync)."""
    seen: list[int] = []
    original = sync.AsyncToSync.__call__

    def counted(self, *args, **kwargs):
        seen.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sync.AsyncToSync, "__call__", counted)
    return seen


def _get(path: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return DoorClient().get(path, headers=headers)


def test_an_api_read_answers_without_going_back_to_the_event_loop(project, key, make_event,
                                                                   bounces):  # fmt: skip
    for message in ("first", "second", "third"):
        make_event(message=message)
    bounces.clear()
    response = _get(f"/api/v1/projects/{project.id}/session-errors", key)
    assert response.status_code == 200
    assert [e["message"] for e in response.json()["errors"]] == ["third", "second", "first"]
    # The client's own entry into the application, from this thread, and nothing after it:
    # the stock handler went back to the loop once more, from its last sync middleware.
    assert bounces == [threading.get_ident()]


def test_an_api_refusal_still_comes_from_inside_the_chain(project, key, bounces):
    response = _get("/api/v1/projects/00000000-0000-4000-8000-000000000000/session-errors", key)
    # The envelope's request id is the outermost middleware's.
    assert assert_envelope(response, 404, "NOT_FOUND")["message"] == "No such project"
    assert len(bounces) == 1


def test_a_page_runs_the_session_and_csrf_middleware(bounces):
    response = _get(reverse("login"))
    assert response.status_code == 200
    assert "csrftoken" in response.get("set-cookie", "")
    assert response.get("content-security-policy")
    assert len(bounces) == 1
