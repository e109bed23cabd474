from __future__ import annotations

import orjson
import pytest

from errorsink.ingest.queue import redis_client
from errorsink.ingest.reader import QueueReader


@pytest.fixture
def clean_queue():
    """The test Redis database emptied before and after: queue, dead letters, processing."""
    client = redis_client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def reader(clean_queue):
    notifications: list[dict] = []
    reader = QueueReader(batch_size=500, notify=notifications.append)
    reader.notifications = notifications
    return reader


def drain(reader: QueueReader) -> int:
    """Run the reader until the queue is empty; returns how many items it handled."""
    handled = 0
    while reader.queue.redis.llen(reader.queue.name):
        handled += reader.run_once()
    return handled


def dead_letters(reader: QueueReader) -> list[dict]:
    return [orjson.loads(entry) for entry in reader.queue.redis.lrange(reader.queue.dead, 0, -1)]
