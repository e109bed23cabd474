"""Sentry's endpoints (docs/sentry.md) with envelopes built as Sentry SDKs build them: events
queued in the sentry format, other items skipped, Sentry's own answers for bad keys and bodies,
gzip and br bombs refused without inflating them, and Sentry's rate-limit answer. The real
sentry-sdk against the running stack is in tests/test_sentry_sdk_live.py."""

from __future__ import annotations

import gzip
import zlib

import brotli
import orjson
import pytest

from errorsink.ingest.formats import normalise_item
from errorsink.ingest.queue import queue_name, redis_client
from errorsink.sentry.keys import sentry_key_for, sentry_key_rotate
from tests.door_client import DoorClient as Client
from tests.errorsink.sentry.test_format import EXCEPTION_EVENT

pytestmark = pytest.mark.django_db


def _envelope(*items: tuple[dict, bytes], with_length: bool = True) -> bytes:
    lines = [
        orjson.dumps({"event_id": EXCEPTION_EVENT["event_id"], "sent_at": "2026-11-22T10:00:00Z"})
    ]
    for header, payload in items:
        header = {**header, "length": len(payload)} if with_length else header
        lines += [orjson.dumps(header), payload]
    return b"\n".join(lines) + b"\n"


def _post(key, body: bytes, *, auth: str | None = None, encoding: str | None = None,
          path: str = "envelope"):  # fmt: skip
    headers = {"X-Sentry-Auth": auth if auth is not None else
               f"Sentry sentry_key={key.public_key}, sentry_version=7"}  # fmt: skip
    if encoding:
        headers["Content-Encoding"] = encoding
    return Client().post(f"/api/{key.id}/{path}/", body,
                         content_type="application/x-sentry-envelope", headers=headers)  # fmt: skip


def _queued() -> list[bytes]:
    return list(reversed(redis_client().lrange(queue_name(), 0, -1)))


@pytest.fixture(autouse=True)
def empty_queue():
    redis_client().delete(queue_name())
    yield
    redis_client().delete(queue_name())


def test_an_envelopes_event_is_queued_and_other_items_skipped(project):
    key = sentry_key_for(project)
    body = _envelope(({"type": "event"}, orjson.dumps(EXCEPTION_EVENT)),
                     ({"type": "transaction"}, b'{"spans": []}'),
                     ({"type": "client_report"}, b'{"discarded_events": []}'))  # fmt: skip
    response = _post(key, body)
    assert response.status_code == 200 and response.json() == {"id": EXCEPTION_EVENT["event_id"]}
    (item,) = _queued()
    event = normalise_item(item)
    assert (event.project_id, event.code, event.session_id) == (str(project.id), "KeyError",
                                                                "call-123")  # fmt: skip


COMPRESS = {"gzip": gzip.compress, "deflate": zlib.compress,
            "br": lambda data: brotli.compress(data, quality=4)}  # fmt: skip


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_compressed_bodies_and_items_without_length(project, encoding):
    key = sentry_key_for(project)
    body = _envelope(({"type": "event"}, orjson.dumps(EXCEPTION_EVENT)), with_length=False)
    assert _post(key, COMPRESS[encoding](body), encoding=encoding).status_code == 200
    assert len(_queued()) == 1


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_a_truncated_compressed_body_is_a_400_not_a_partial_envelope(project, encoding):
    body = _envelope(({"type": "event"}, orjson.dumps(EXCEPTION_EVENT)))
    packed = COMPRESS[encoding](body)
    response = _post(sentry_key_for(project), packed[: len(packed) // 2], encoding=encoding)
    assert response.status_code == 400 and encoding in response.json()["detail"]
    assert _queued() == []


def test_an_unknown_encoding_is_named(project):
    response = _post(sentry_key_for(project), b"{}", encoding="zstd")
    assert response.status_code == 400
    assert response.json() == {"detail": "unsupported Content-Encoding 'zstd'"}


def test_the_store_endpoint_takes_one_event_and_the_key_may_be_in_the_query(project, caplog):
    key = sentry_key_for(project)
    url = f"/api/{key.id}/store/?sentry_key={key.public_key}&sentry_version=7"
    with caplog.at_level("INFO", logger="errorsink.api.access"):
        response = Client().post(url, orjson.dumps(EXCEPTION_EVENT),
                                 content_type="application/json")  # fmt: skip
    assert response.status_code == 200 and len(_queued()) == 1
    # The key authenticates: the access log names the request, not the credential.
    (line,) = [r.getMessage() for r in caplog.records if r.name == "errorsink.api.access"]
    assert "sentry_key=[redacted]&sentry_version=7" in line and key.public_key not in line


def test_missing_wrong_and_rotated_keys_get_sentrys_answers(
    project, other_project, django_capture_on_commit_callbacks
):
    key = sentry_key_for(project)
    body = _envelope(({"type": "event"}, orjson.dumps(EXCEPTION_EVENT)))
    assert _post(key, body, auth="").status_code == 401
    assert _post(key, body, auth="Sentry sentry_key=0123, sentry_version=7").json() == {
        "detail": "invalid api key"
    }
    theirs = sentry_key_for(other_project)
    assert _post(theirs, body, auth=f"Sentry sentry_key={key.public_key}").status_code == 403
    old = key.public_key
    with django_capture_on_commit_callbacks(execute=True):  # the grants' version moves on
        sentry_key_rotate(project)
    assert _post(key, body, auth=f"Sentry sentry_key={old}").status_code == 403
    assert _queued() == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json\n", "the envelope header is not valid JSON"),
        (b'{}\n{"type": "event", "length": 999}\n{}\n', "item 1's length 999 runs past the end"),
        (b'{}\n{"type": "event", "length": -1}\n{}\n', "item 1's length is not a non-negative"),
        (b'{}\n{"type": "event"}\n\xff\xfe\n', "item 1 (an event) is not valid JSON"),
    ],
)
def test_a_malformed_envelope_is_a_400_with_its_reason(project, body, detail):
    response = _post(sentry_key_for(project), body)
    assert response.status_code == 400 and detail in response.json()["detail"]
    assert _queued() == []


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_compression_bomb_is_refused_without_inflating_it(project, encoding):
    bomb = COMPRESS[encoding](b"\0" * (64 * 1024 * 1024))  # 64 MB of zeros in 64 KB or less
    response = _post(sentry_key_for(project), bomb, encoding=encoding)
    assert response.status_code == 413 and "inflates past" in response.json()["detail"]


def test_over_the_ingest_quota_is_a_429_sentry_sdks_understand(project):
    project.ingest_quota = 2
    project.save()
    key = sentry_key_for(project)
    events = [({"type": "event"}, orjson.dumps({**EXCEPTION_EVENT, "event_id": f"{n:032x}"}))
              for n in range(3)]  # fmt: skip
    # An envelope is all or nothing: three events do not fit a quota of two a second.
    limited = _post(key, _envelope(*events))
    assert limited.status_code == 429 and "quota of 2 events a second" in limited.json()["detail"]
    assert limited["Retry-After"] == "1"
    assert limited["X-Sentry-Rate-Limits"] == "1::project"
    assert _queued() == []
    assert _post(key, _envelope(*events[:2])).status_code == 200
    assert len(_queued()) == 2


def test_a_bad_event_loses_no_other_event_of_the_envelope(project):
    good, bad = orjson.dumps(EXCEPTION_EVENT), orjson.dumps({**EXCEPTION_EVENT, "timestamp": True,
                                                            "event_id": "b" * 32})  # fmt: skip
    response = _post(sentry_key_for(project), _envelope(({"type": "event"}, bad),
                                                        ({"type": "event"}, good)))  # fmt: skip
    assert response.status_code == 200 and len(_queued()) == 1


def _event(number: int) -> bytes:
    return orjson.dumps({**EXCEPTION_EVENT, "event_id": f"{number:032x}"})


def test_an_event_that_is_not_json_is_refused_alone(project):
    body = _envelope(({"type": "event"}, _event(1)), ({"type": "event"}, b'{"bad": "\xff\xfe"}'),
                     ({"type": "event"}, _event(3)))  # fmt: skip
    response = _post(sentry_key_for(project), body)
    assert response.status_code == 200 and response.json()["id"] == f"{1:032x}"
    (reason,) = response.json()["refused"]  # said in the answer, as Sentry SDKs ignore it
    assert reason.startswith("item 2 (an event) is not valid JSON")
    assert [orjson.loads(item)["event_id"] for item in _queued()] == [f"{1:032x}", f"{3:032x}"]


def test_broken_framing_keeps_the_events_before_it_and_says_where(project):
    body = _envelope(({"type": "event"}, _event(1)), ({"type": "event"}, _event(2)))
    body += b'{"type": "event", "length": 99999}\n{}\n'
    response = _post(sentry_key_for(project), body)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "item 3's length 99999 runs past the end; the 2 event(s) before it were accepted"
    )
    assert len(_queued()) == 2


def test_ten_thousand_items_are_read_and_their_events_queued(project):
    events = [({"type": "event"}, _event(n)) for n in range(5_000)]
    reports = [({"type": "client_report"}, b'{"discarded_events": []}')] * 5_000
    body = _envelope(*[pair for both in zip(events, reports, strict=True) for pair in both])
    response = _post(sentry_key_for(project), gzip.compress(body), encoding="gzip")
    assert response.status_code == 200
    queued = _queued()
    assert (
        len(queued) == 5_000 and len({orjson.loads(item)["event_id"] for item in queued}) == 5_000
    )
