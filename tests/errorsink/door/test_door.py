"""The front door (errorsink/door): the batch route, the ingest quota, compressed bodies, and
its copy of the keys following changes as they commit."""

from __future__ import annotations

import gzip

import orjson
import pytest

from errorsink.ingest.queue import queue_name, redis_client
from errorsink.projects.api_keys import api_key_create, api_key_revoke
from errorsink.projects.models import ApiKey
from tests.api.conftest import assert_envelope
from tests.door_client import DoorClient

pytestmark = pytest.mark.django_db

ITEM = {"type": "session_error", "code": "WEBRTC_CONNECTION_FAILED", "message": "Peer failed",
        "session_id": "door-1"}  # fmt: skip


@pytest.fixture(autouse=True)
def empty_queue():
    redis_client().delete(queue_name())
    yield
    redis_client().delete(queue_name())


@pytest.fixture
def plaintext(project) -> str:
    return api_key_create(project=project, scopes=ApiKey.SCOPES)[1]


def _post(project, key: str, body, *, batch: bool = False, headers: dict | None = None,
          content_type: str = "application/json"):  # fmt: skip
    path = f"/api/v1/projects/{project.id}/events" + ("/batch" if batch else "")
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    return DoorClient().post(path, data, content_type=content_type, headers=headers)


def _queued() -> list[dict]:
    return [orjson.loads(raw) for raw in reversed(redis_client().lrange(queue_name(), 0, -1))]


def _items(count: int) -> list[dict]:
    return [{**ITEM, "event_id": f"door-{n}"} for n in range(count)]


def test_a_batch_queues_the_good_items_and_answers_each_by_its_index(project, plaintext):
    items = [*_items(2), {"type": "session_error", "session_id": "door-1"}, *_items(3)[2:]]
    response = _post(project, plaintext, items, batch=True)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["refused"]) == (3, 1)
    assert [r.get("event_id") for r in body["results"]] == ["door-0", "door-1", None, "door-2"]
    assert body["results"][2]["error"]
    assert [q["event_id"] for q in _queued()] == ["door-0", "door-1", "door-2"]


def test_a_batch_may_be_ndjson_and_a_line_that_is_not_json_is_refused_alone(project, plaintext):
    lines = b"\n".join([orjson.dumps(_items(1)[0]), b"{not json", orjson.dumps(_items(2)[1]), b""])
    response = _post(project, plaintext, lines, batch=True, content_type="application/x-ndjson")
    body = response.json()
    assert response.status_code == 202 and body["accepted"] == 2
    assert "not valid JSON" in body["results"][1]["error"]


def test_a_batch_with_no_valid_item_is_a_422_naming_each(project, plaintext):
    response = _post(project, plaintext, [{"type": "nope"}, {}], batch=True)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert set(error["details"]) == {"items[0]", "items[1]"}
    assert _queued() == []


def test_a_batch_must_be_a_list(project, plaintext):
    response = _post(project, plaintext, ITEM, batch=True)
    assert_envelope(response, 422, "VALIDATION_ERROR")


def test_past_the_quota_events_get_429_and_a_batch_queues_what_fits(project, plaintext):
    project.ingest_quota = 3
    project.save()
    # Five items never fit three a second: refused whole, whatever second it is.
    limited = _post(project, plaintext, _items(5))
    assert_envelope(limited, 429, "RATE_LIMITED")
    assert (
        limited["Retry-After"] == "1" and "quota of 3 events" in limited.json()["error"]["message"]
    )
    assert _queued() == []
    response = _post(project, plaintext, _items(5), batch=True)
    body = response.json()
    assert response.status_code == 202 and response["Retry-After"] == "1"
    assert body["accepted"] <= 3 and body["accepted"] + body["refused"] == 5
    assert all("quota" in r["error"] for r in body["results"][body["accepted"] :])
    assert len(_queued()) == body["accepted"]
    refused = sum(int(v) for v in redis_client().mget(
        redis_client().keys(f"errorsink:quota-refused:{project.id}:*")))  # fmt: skip
    assert refused == 5 + body["refused"]


def test_a_quota_of_zero_is_no_limit(project, plaintext):
    project.ingest_quota = 0
    project.save()
    assert _post(project, plaintext, _items(1000)).status_code == 202
    assert len(_queued()) == 1000


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_read(project, plaintext, encoding):
    import zlib

    import brotli

    raw = orjson.dumps(_items(3))
    body = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding](raw)
    response = _post(project, plaintext, body, headers={"Content-Encoding": encoding})
    assert response.status_code == 202 and len(_queued()) == 3


def test_a_bomb_is_refused_with_413(project, plaintext):
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    response = _post(project, plaintext, bomb, headers={"Content-Encoding": "gzip"})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_get_is_405_with_allow(project, plaintext):
    response = DoorClient().get(f"/api/v1/projects/{project.id}/events",
                                headers={"Authorization": f"Bearer {plaintext}"})  # fmt: skip
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"


def test_an_unknown_host_is_refused_before_the_key(project, plaintext):
    response = DoorClient(host="evil.example").post(
        f"/api/v1/projects/{project.id}/events", orjson.dumps(ITEM)
    )
    assert_envelope(response, 400, "BAD_REQUEST")


def test_a_key_made_after_the_copy_was_loaded_is_found(project, plaintext):
    assert _post(project, plaintext, ITEM).status_code == 202  # the copy is loaded now
    redis_client().incr("errorsink:grants:version")  # as the commit of the new key does
    newer = api_key_create(project=project, scopes=["errors:write"])[1]
    assert _post(project, newer, _items(1)).status_code == 202


def test_a_key_revoked_after_the_copy_was_loaded_is_refused_at_once(
    project, plaintext, django_capture_on_commit_callbacks
):
    assert _post(project, plaintext, ITEM).status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=ApiKey.objects.get(project=project))
    response = _post(project, plaintext, _items(1))
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert len(_queued()) == 1
