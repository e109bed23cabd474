"""The queue reader against the real Redis and PostgreSQL: storage, idempotency, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from errorsink.ingest import persist as persist_module
from errorsink.ingest.queue import enqueue, heartbeat_key, processing_prefix
from errorsink.ingest.reader import QueueReader
from errorsink.live import epoch_us, stored_error
from errorsink.sessions.models import Event, Session
from tests.errorsink.conftest import dead_letters, drain
from tests.errorsink.ingest.test_formats import GECX_ERROR, TELNYX_HANGUP, TELNYX_WARNING

pytestmark = pytest.mark.django_db(transaction=True)
UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"


def seed_session_error(project_id) -> dict:
    # Seed 000's example, verbatim but for real ids.
    return {
        "type": "session_error",
        "code": "AGENT_CHILD_CRASHED",
        "message": "Sorry, something went wrong.",
        "session_id": "orch-session-1",
        "project_id": str(project_id),
        "build_id": "7d4c2d0e-0d8e-4a5e-9d55-7d1f0c7f2a10",
        "stack": "Error: …\n at …",
        "recoverable": False,
        "customer_context": {"userId": "u_123"},
        "occurred_at": "2026-06-19T12:00:00.000Z",
    }


def test_it_stores_the_seed_session_error_as_sent(reader, project):
    enqueue([json.dumps(seed_session_error(project.id))])

    assert drain(reader) == 1

    event = Event.objects.get()
    assert (event.kind, event.code, event.source) == ("error", "AGENT_CHILD_CRASHED", "agent")
    assert event.message == "Sorry, something went wrong."
    assert event.stack == "Error: …\n at …"
    assert event.recoverable is False
    assert event.customer_context == {"userId": "u_123"}
    assert event.occurred_at == datetime(2026, 6, 19, 12, tzinfo=UTC)
    assert event.raw == seed_session_error(project.id)
    session = Session.objects.get()
    assert session.session_id == "orch-session-1"
    assert (session.error_count, session.event_count) == (1, 1)
    assert session.customer_context == {"userId": "u_123"}
    assert session.build_id == "7d4c2d0e-0d8e-4a5e-9d55-7d1f0c7f2a10"
    assert session.first_seen == session.last_seen == event.occurred_at


ITEMS = [
    ({"type": "agent_error", "message": "boom", "session_id": "s"},
     ("error", "AGENT_CHILD_CRASHED", "agent", False)),
    ({"type": "session_warning", "session_id": "s", "code": 31002, "metrics": {"jitter_ms": 40}},
     ("warning", "31002", "runner", True)),
    ({"type": "session_end", "session_id": "s", "cause": "USER_BUSY", "sip_code": 486},
     ("termination", "USER_BUSY", "runner", None)),
    ({"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.error", "session_id": "s",
      "event": {"error": {"code": 45002, "name": "WEBSOCKET_ERROR", "message": "lost"},
                "sessionId": "s"}},
     ("error", "45002", "client", False)),
    ({"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.error", "session_id": "s",
      "event": {"error": {"code": 45002, "name": "WEBSOCKET_ERROR", "fatal": False},
                "sessionId": "s"}},
     ("error", "45002", "client", True)),
    ({"type": "sdk_event", "sdk": "onebudd", "name": "error",
      "event": {"type": "error", "version": "1", "session_id": "s", "timestamp": 1699900000000,
                "payload": {"code": "stt_failed", "message": "bad audio", "fatal": False}}},
     ("error", "stt_failed", "client", True)),
    ({"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.warning",
      "event": json.loads(TELNYX_WARNING)},
     ("warning", "31002", "client", True)),
    ({"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.notification", "session_id": "s",
      "event": json.loads(TELNYX_HANGUP)},
     ("termination", "USER_BUSY", "client", None)),
    ({"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.notification", "session_id": "s",
      "event": {"type": "callUpdate", "call": {"state": "hangup", "prevState": "active"}}},
     ("termination", "NORMAL_CLEARING", "client", None)),
    ({"type": "sdk_event", "sdk": "gecx", "name": "ChatSdkError", "session_id": "chat-1",
      "event": json.loads(GECX_ERROR)},
     ("error", "TOKEN_ENDPOINT_FAILED", "client", True)),
]  # fmt: skip


@pytest.mark.parametrize(("item", "expected"), ITEMS, ids=lambda v: str(v)[:40])
def test_it_stores_each_type_with_kind_code_source_and_recoverable(reader, project, item, expected):
    enqueue([json.dumps({**item, "project_id": str(project.id)})])
    drain(reader)
    event = Event.objects.get()
    assert expected[:3] == (event.kind, event.code, event.source)
    if expected[3] is not None:
        assert event.recoverable is expected[3]


def test_it_stores_a_pushed_twice_item_once_with_or_without_event_id(reader, project):
    with_id = {**seed_session_error(project.id), "event_id": "evt-1"}
    without_id = {**seed_session_error(project.id), "message": "no id"}
    enqueue([json.dumps(with_id), json.dumps(without_id)])
    drain(reader)
    enqueue([json.dumps(with_id), json.dumps(without_id)])  # re-delivered later
    drain(reader)

    assert Event.objects.count() == 2
    assert Session.objects.get().error_count == 2  # duplicates never inflate the counts


def test_it_dead_letters_bad_items_and_stores_the_good_ones_around_them(reader, project):
    good = [json.dumps({**seed_session_error(project.id), "event_id": f"g{n}"}) for n in range(3)]
    bad = [
        b"{not json",
        b"[1, 2, 3]",
        b'"just a string"',
        json.dumps({"type": "mystery", "project_id": str(project.id)}),
        json.dumps({**seed_session_error(project.id), "project_id": UNKNOWN_PROJECT}),
        json.dumps({k: v for k, v in seed_session_error(project.id).items() if k != "session_id"}),
        json.dumps({**seed_session_error(project.id), "message": "x" * (100 * 1024)}),
        json.dumps({**seed_session_error(project.id), "recoverable": "no"}),
        json.dumps({**seed_session_error(project.id), "customer_context": [1]}),
        json.dumps({**seed_session_error(project.id), "occurred_at": "yesterday"}),
        b"\xff\xfe not utf-8",
        json.dumps({**seed_session_error(project.id), "project_id": "not-a-uuid"}),
    ]  # fmt: skip
    enqueue([good[0], *bad[:6], good[1], *bad[6:], good[2]])

    drain(reader)

    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["g0", "g1", "g2"]
    dead = dead_letters(reader)
    assert len(dead) == len(bad)
    assert all(entry["reason"] and entry["at"] and "item" in entry for entry in dead)
    reasons = " | ".join(entry["reason"] for entry in dead)
    assert "unknown project 00000000-0000-4000-8000-000000000000" in reasons
    assert "{not json" in [entry["item"] for entry in dead]


def test_it_notifies_once_per_project_per_batch_with_ids_kinds_and_error_hints(reader, project):
    warning = {"type": "session_warning", "project_id": str(project.id), "session_id": "s",
               "code": "HIGH_JITTER"}  # fmt: skip
    enqueue([json.dumps(seed_session_error(project.id)), json.dumps(warning)])
    drain(reader)

    assert len(reader.notifications) == 1
    stored = reader.notifications[0][project.id]
    expected = [
        stored_error(e.pk, e.code, e.source, epoch_us(e.received_at))
        if e.kind == Event.ERROR else (e.pk, e.kind)
        for e in Event.objects.all()
    ]  # fmt: skip
    assert sorted(stored) == sorted(expected)
    assert {entry[1] for entry in stored} == {"error", "warning"}


def test_it_requeues_the_processing_list_of_a_dead_worker(reader, project):
    items = [json.dumps({**seed_session_error(project.id), "event_id": f"e{n}"}) for n in range(3)]
    redis = reader.queue.redis
    dead_list = processing_prefix() + "gone-worker"
    redis.rpush(dead_list, *items)  # what a worker killed mid-batch leaves behind
    redis.set(heartbeat_key("alive-worker"), "1")
    redis.rpush(processing_prefix() + "alive-worker", items[0])

    assert reader.queue.reclaim_dead_workers() == 3
    drain(reader)

    assert Event.objects.count() == 3
    assert redis.exists(dead_list) == 0
    assert redis.llen(processing_prefix() + "alive-worker") == 1  # a live one is left be


def _nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth):
        value = {"inner": value}
    return value


def test_it_dead_letters_an_item_too_deep_to_store_and_keeps_going(reader, project):
    deep = {**seed_session_error(project.id), "event_id": "deep", "customer_context": _nested(300)}
    good = {**seed_session_error(project.id), "event_id": "good"}
    enqueue([json.dumps(deep), json.dumps(good)])

    drain(reader)

    assert list(Event.objects.values_list("event_id", flat=True)) == ["good"]
    [entry] = dead_letters(reader)
    assert entry["reason"].startswith("cannot be stored")


def test_it_stores_item_by_item_after_an_unexpected_failure(reader, project, monkeypatch):
    real_persist = persist_module.events_persist

    def poisoned(rows):
        if any(row.event_id == "poison" for row in rows):
            raise RuntimeError("boom")
        return real_persist(rows)

    monkeypatch.setattr(persist_module, "events_persist", poisoned)
    ids = ["a", "poison", "b"]
    enqueue([json.dumps({**seed_session_error(project.id), "event_id": i}) for i in ids])

    drain(reader)

    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b"]
    [entry] = dead_letters(reader)
    assert entry["reason"] == "could not be stored: RuntimeError: boom"
    assert reader.queue.redis.llen(reader.queue.processing) == 0


def test_it_requeues_a_dead_workers_items_in_their_original_order(reader, project):
    items = [json.dumps({**seed_session_error(project.id), "event_id": f"o{n}"}) for n in range(3)]
    reader.queue.redis.rpush(processing_prefix() + "gone", *items)  # oldest first, as taken
    reader.queue.reclaim_dead_workers()
    one_at_a_time = QueueReader(batch_size=1)

    drain(one_at_a_time)

    assert list(Event.objects.order_by("id").values_list("event_id", flat=True)) == [
        "o0",
        "o1",
        "o2",
    ]
