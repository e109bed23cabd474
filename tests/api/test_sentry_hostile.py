"""The Sentry door against what an outside probe sent it: events of every wrong shape beside a
good one, over-long fields and deep nesting. No 500; every good event stored; a bad event
refused alone with its reason; nothing answered 200 for is dead-lettered later."""

from __future__ import annotations

import copy

import orjson
import pytest

from errorsink.ingest.queue import dead_letter_name, queue_name, redis_client
from errorsink.sentry.keys import sentry_key_for
from errorsink.sessions.models import Event
from tests.door_client import DoorClient as Client
from tests.errorsink.conftest import drain
from tests.errorsink.sentry.test_format import EXCEPTION_EVENT

pytestmark = pytest.mark.django_db


DEEP = "@deep@"


def _nested(depth: int) -> bytes:
    """JSON nested ``depth`` objects deep, written out: past what a serialiser recurses into."""
    return b'{"n":' * depth + b'{"leaf":true}' + b"}" * depth


# Events no Sentry SDK sends: each must be refused (or read) alone, never break the request.
WRONG_SHAPES = {
    "exception a string": {"exception": "x"},
    "exception a list": {"exception": [1]},
    "exception a number": {"exception": 5},
    "exception true": {"exception": True},
    "values a string": {"exception": {"values": "abc"}},
    "values of strings": {"exception": {"values": ["x"]}},
    "values of null": {"exception": {"values": [None]}},
    "stacktrace a string": {"exception": {"values": [{"type": "E", "stacktrace": "s"}]}},
    "frames a string": {"exception": {"values": [{"type": "E", "stacktrace": {"frames": "f"}}]}},
    "frames of junk": {"exception": {"values": [{"type": "E",
                                                 "stacktrace": {"frames": [1, "x", None]}}]}},
    "event stacktrace a string": {"stacktrace": "s"},
    "tags a string": {"tags": "t"},
    "tags odd pairs": {"tags": [["a"], "b", [1, 2, 3], None]},
    "user a string": {"user": "u"},
    "contexts a list": {"contexts": [1, 2]},
    "level a number": {"level": 5},
    "timestamp nonsense": {"timestamp": "yesterday"},
    "event_id a number": {"event_id": 5},
    "fingerprint a string": {"fingerprint": "fp"},
    "message an object of junk": {"message": {"formatted": 5}},
    "release a list": {"release": ["1"]},
}  # fmt: skip
# Events too large or too deep as sent, which the door cuts and keeps.
CUT_AND_KEPT = {
    "exception value of 100 KB": {"exception": {"values": [{"type": "E", "value": "v" * 100_000}]}},
    "tag of 100 KB": {"tags": {"session_id": "call-1", "huge": "t" * 100_000}},
    "message of 100 KB": {"exception": None, "message": "m" * 100_000},
    "contexts 300 deep": {"contexts": {"deep": DEEP}},
    "user 1000 deep": {"user": DEEP},
    "3,000 frames": {"exception": {"values": [{"type": "E", "stacktrace": {"frames": [
        {"filename": f"f{n}.py", "function": "g" * 300, "lineno": n} for n in range(3000)]}}]}},
    "100 contexts of 20 KB": {"contexts": {f"c{n}": {"v": "x" * 20_000} for n in range(100)}},
}  # fmt: skip


def _event(number: int, change: dict | None = None) -> dict:
    event = copy.deepcopy(EXCEPTION_EVENT)
    event["event_id"] = f"{number:032x}"
    event.update(change or {})
    return event


DEPTHS = {"contexts 300 deep": 300, "user 1000 deep": 1000}


def _json(event: dict, depth: int = 0) -> bytes:
    return orjson.dumps(event).replace(f'"{DEEP}"'.encode(), _nested(depth))


def _envelope(*payloads: bytes) -> bytes:
    lines = [b'{"sent_at": "2026-12-05T10:00:00Z"}']
    for payload in payloads:
        lines += [orjson.dumps({"type": "event", "length": len(payload)}), payload]
    return b"\n".join(lines) + b"\n"


def _post(key, body: bytes, path: str = "envelope"):
    auth = {"X-Sentry-Auth": f"Sentry sentry_key={key.public_key}"}
    return Client().post(f"/api/{key.id}/{path}/", body, "application/json", headers=auth)


@pytest.fixture
def key(project, clean_queue):
    return sentry_key_for(project)


@pytest.mark.parametrize("name", sorted(WRONG_SHAPES))
def test_a_wrong_shape_is_refused_alone_and_the_good_events_beside_it_are_stored(
    name, key, project, reader
):
    before, bad, after = _event(1), _event(2, WRONG_SHAPES[name]), _event(3)
    response = _post(key, _envelope(_json(before), _json(bad), _json(after)))
    assert response.status_code == 200, response.content
    drain(reader)
    stored = set(Event.objects.filter(project=project).values_list("event_id", flat=True))
    assert {before["event_id"], after["event_id"]} <= stored
    refused = response.json().get("refused", [])
    # Stored as well, or refused with its reason: never accepted and then lost.
    assert len(stored) == 3 or (len(refused) == 1 and "not usable" in refused[0]), refused
    assert redis_client().llen(dead_letter_name()) == 0


@pytest.mark.parametrize("name", sorted(CUT_AND_KEPT))
def test_an_over_long_or_deep_event_is_cut_and_stored_never_dead_lettered(
    name, key, project, reader
):
    event = _event(7, CUT_AND_KEPT[name])
    response = _post(key, _envelope(_json(event, DEPTHS.get(name, 0))))
    assert response.status_code == 200, response.content
    assert response.json()["id"] == event["event_id"]
    assert drain(reader) == 1
    assert redis_client().llen(dead_letter_name()) == 0
    assert Event.objects.filter(project=project, event_id=event["event_id"]).exists()


@pytest.mark.parametrize("name", sorted(WRONG_SHAPES))
def test_the_store_endpoint_answers_a_wrong_shape_in_sentrys_form(name, key):
    response = _post(key, _json(_event(2, WRONG_SHAPES[name])), path="store")
    assert response.status_code in (200, 400), response.content
    expected = {"id"} if response.status_code == 200 else {"detail"}
    assert set(response.json()) == expected


def test_an_empty_queue_is_left_after_the_door_refuses_everything(key):
    response = _post(key, _envelope(_json(_event(2, {"exception": "x"}))))
    assert response.status_code == 400 and "detail" in response.json()
    assert redis_client().llen(queue_name()) == 0
