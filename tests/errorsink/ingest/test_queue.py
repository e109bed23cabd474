"""The queue protocol against the real Redis: take, acknowledge, dead letters, requeueing a dead
worker's items, and the operators' view of it all."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import orjson
import pytest
from django.core.management import call_command

from errorsink.ingest.queue import (
    TakePace,
    WorkerQueue,
    dead_letter_name,
    dead_letters_dropped_name,
    enqueue,
    processing_prefix,
    queue_name,
)
from errorsink.ingest.reader import queue_readers_start


class _Clock:
    """A pace's clock and sleep, by hand: sleeping moves the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def _paced(clean_queue, clock: _Clock, every: float = 0.05) -> WorkerQueue:
    pace = TakePace(every=every, clock=lambda: clock.now, sleep=clock.sleep)
    return WorkerQueue(clean_queue, "w1", pace=pace)


def _one_taken(clean_queue, clock: _Clock) -> WorkerQueue:
    """A paced queue that has just taken and stored a batch of one item."""
    queue = _paced(clean_queue, clock)
    enqueue([b"1"])
    assert queue.take(10) == [b"1"]
    queue.acknowledge()
    return queue


def test_a_paced_queue_takes_the_first_item_after_a_quiet_spell_at_once(clean_queue):
    clock = _Clock()
    queue = _one_taken(clean_queue, clock)

    clock.now += 5  # a quiet spell, longer than the pace
    enqueue([b"2"])
    assert queue.take(10) == [b"2"]
    assert clock.slept == []


def test_while_items_keep_coming_a_paced_queue_takes_one_batch_per_interval(clean_queue):
    clock = _Clock()
    queue = _one_taken(clean_queue, clock)

    clock.now += 0.01  # the batch was stored in 10 ms; more came meanwhile
    enqueue([b"2", b"3"])
    assert queue.take(10) == [b"2", b"3"]  # one batch, taken once the 50 ms were up
    assert clock.slept == [0.04]


def test_a_full_batch_means_a_backlog_and_the_next_is_taken_at_once(clean_queue):
    clock = _Clock()
    queue = _paced(clean_queue, clock)
    enqueue([b"%d" % n for n in range(5)])
    assert queue.take(2) == [b"0", b"1"]
    queue.acknowledge()
    assert queue.take(2) == [b"2", b"3"]
    queue.acknowledge()
    assert queue.take(2) == [b"4"]  # the backlog is gone: the next take waits its turn
    queue.acknowledge()
    enqueue([b"5"])
    assert queue.take(2) == [b"5"]
    assert clock.slept == [0.05]


def test_it_keeps_a_taken_batch_in_the_processing_list_until_acknowledged(clean_queue):
    enqueue([b"1", b"2", b"3"])
    queue = WorkerQueue(clean_queue, "w1")

    assert queue.take(2) == [b"1", b"2"]  # oldest first
    assert clean_queue.lrange(queue.processing, 0, -1) == [b"1", b"2"]
    # Not acknowledged (the store failed): the next round gets them again, with what came next.
    assert queue.take(2) == [b"1", b"2", b"3"]

    queue.acknowledge()
    assert not clean_queue.exists(queue.processing)
    assert clean_queue.llen(queue_name()) == 0


def test_it_writes_dead_letters_with_the_reason_the_original_text_and_the_time(clean_queue):
    WorkerQueue(clean_queue, "w1").dead_letter([(b'{"a": 1}', "why"), (b"\xff", "not utf-8")])

    entries = [orjson.loads(entry) for entry in clean_queue.lrange(dead_letter_name(), 0, -1)]
    assert [(entry["reason"], entry["item"]) for entry in entries] == [
        ("why", '{"a": 1}'),
        ("not utf-8", "\ufffd"),
    ]
    assert all(
        entry["at"].endswith("Z") and datetime.fromisoformat(entry["at"]) for entry in entries
    )


def test_only_a_full_dead_letter_list_warns_of_what_it_dropped(clean_queue, settings, caplog):
    settings.ERRORSINK_DEAD_LETTERS_MAX = 3
    queue = WorkerQueue(clean_queue, "w1")
    queue.dead_letter([(b"1", "a"), (b"2", "b")])
    assert "dropped" not in caplog.text  # room for both: nothing dropped, nothing said
    queue.dead_letter([(b"3", "c"), (b"4", "d")])
    assert "dropped its 1 oldest entries" in caplog.text
    assert clean_queue.get(dead_letters_dropped_name()) == b"1"


def test_a_huge_item_is_dead_lettered_cut_with_its_size(clean_queue, settings):
    settings.ERRORSINK_DEAD_ITEM_MAX_BYTES = 1000
    WorkerQueue(clean_queue, "w1").dead_letter([(b"x" * 10_000_000, "too big")])
    entry = orjson.loads(clean_queue.lindex(dead_letter_name(), 0))
    assert (entry["reason"], entry["truncated"], entry["size"]) == ("too big", True, 10_000_000)
    assert entry["item"] == "x" * 1000
    assert clean_queue.memory_usage(dead_letter_name()) < 10_000  # not 10 MB


def test_the_list_keeps_its_newest_entries_and_counts_the_dropped(clean_queue, settings):
    settings.ERRORSINK_DEAD_LETTERS_MAX = 5
    queue = WorkerQueue(clean_queue, "w1")
    queue.dead_letter([(f"{n}".encode(), "why") for n in range(3)])
    queue.dead_letter([(f"{n}".encode(), "why") for n in range(3, 8)])
    kept = [orjson.loads(e)["item"] for e in clean_queue.lrange(dead_letter_name(), 0, -1)]
    assert kept == ["3", "4", "5", "6", "7"]
    assert int(clean_queue.get(dead_letters_dropped_name())) == 3


def test_it_requeues_only_the_items_of_workers_whose_heartbeat_expired(clean_queue):
    alive = WorkerQueue(clean_queue, "alive")
    alive.heartbeat()
    clean_queue.rpush(alive.processing, b"a")
    clean_queue.rpush(processing_prefix() + "gone", b"g1", b"g2")  # oldest first, as taken
    me = WorkerQueue(clean_queue, "me")

    assert me.reclaim_dead_workers() == 2

    assert clean_queue.lrange(alive.processing, 0, -1) == [b"a"]
    assert me.take(10) == [b"g1", b"g2"]  # back at the consuming end, in their order


@pytest.mark.django_db
def test_it_reports_depth_dead_letters_and_processing_lists(clean_queue):
    enqueue([b"1", b"2"])
    WorkerQueue(clean_queue, "w1").dead_letter([(b"x", "why")])
    alive = WorkerQueue(clean_queue, "alive")
    alive.heartbeat()
    alive.take(1)
    clean_queue.rpush(processing_prefix() + "gone", b"g")
    out = StringIO()

    call_command("ingest_status", "--json", stdout=out)

    status = orjson.loads(out.getvalue())
    assert (status["queue"], status["queue_depth"], status["dead_letters"]) == (queue_name(), 1, 1)
    assert status["processing"] == {
        "alive": {"items": 1, "alive": True},
        "gone": {"items": 1, "alive": False},
    }
    assert status["stored_last_minute"] == 0


def test_the_readers_of_a_process_take_in_turn_on_one_pace(clean_queue):
    running = queue_readers_start(count=2, batch_size=10)
    try:
        paces = {id(reader.queue.pace) for reader in running.readers}
        assert len(paces) == 1 and running.readers[0].queue.pace is not None
    finally:
        running.stop(timeout=5)
