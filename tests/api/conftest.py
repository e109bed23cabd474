"""API test helpers: keys with chosen scopes, an authorised client, events written directly."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone

from errorsink.ingest.queue import queue_name, redis_client
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey
from errorsink.projects.services import project_create
from errorsink.sessions.models import Event
from tests.door_client import DoorClient
from tests.errorsink.conftest import clean_queue, reader  # noqa: F401  (the queue fixtures)

_DOOR_PATH = re.compile(r"/events(/batch)?$")
ALL_SCOPES = ",".join(ApiKey.SCOPES)
_event_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def empty_queue():
    """The tests' own Redis database: start every test with an empty ingest queue."""
    redis_client().delete(queue_name())
    yield
    redis_client().delete(queue_name())


@pytest.fixture
def keep_the_test_connection():
    """For requests through the ASGI application, as Django's test client does for its own: a
    request's start and end must not close the connection that holds the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def make_key(project):
    def make(scopes: str = ALL_SCOPES, *, on=None, name: str = "test") -> str:
        return api_key_create(project=on or project, scopes=scopes, name=name)[1]

    return make


@pytest.fixture
def key(make_key) -> str:
    return make_key()


@pytest.fixture
def other_project(charlie):
    return project_create(name="Someone else's bot", owner=charlie)


class ApiClient:
    """Django's test client speaking to /api/v1 with a bearer key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client(HTTP_HOST="localhost")
        self.key = key

    def _headers(self, headers: dict | None) -> dict:
        merged = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        merged.update(headers or {})
        return merged

    def get(self, path: str, headers: dict | None = None):
        return self.client.get(f"/api/v1{path}", headers=self._headers(headers))

    def post(self, path: str, body, headers: dict | None = None,
             content_type: str = "application/json"):  # fmt: skip
        data = body if isinstance(body, str | bytes) else _json(body)
        # The ingest routes are the front door's, outside Django: through the ASGI app.
        client = DoorClient() if _DOOR_PATH.search(path) else self.client
        return client.post(
            f"/api/v1{path}", data, content_type=content_type, headers=self._headers(headers)
        )

    def patch(self, path: str, body, headers: dict | None = None):
        data = body if isinstance(body, str | bytes) else _json(body)
        return self.client.patch(
            f"/api/v1{path}", data, content_type="application/json", headers=self._headers(headers)
        )


def _json(body) -> bytes:
    import orjson

    return orjson.dumps(body)


@pytest.fixture
def api(key) -> ApiClient:
    return ApiClient(key)


@pytest.fixture
def make_event(project):
    def make(**fields) -> Event:
        number = next(_event_numbers)
        now = timezone.now()
        values = {
            "project": project,
            "event_id": f"evt-{number}",
            "session_id": "sess-1",
            "kind": Event.ERROR,
            "code": "AGENT_CHILD_CRASHED",
            "message": f"crash {number}",
            "occurred_at": now,
            "received_at": now + timedelta(microseconds=number),
            "source": "agent",
            "severity": "high",
            "recoverable": False,
            "item_type": "session_error",
            "raw": {},
        }
        values.update(fields)
        return Event.objects.create(**values)

    return make


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["requestId"] == response["X-Request-Id"]
    return error
