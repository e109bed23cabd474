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
def consumer(clean_queue):
    notifications: list[dict] = []
    consumer = QueueReader(batch_size=500, notify=notifications.append)
    consumer.notifications = notifications
    return consumer


def drain(consumer: QueueReader) -> int:
    """Run the consumer until the queue is empty; returns how many items it handled."""
    handled = 0
    while consumer.queue.redis.llen(consumer.queue.name):
        handled += consumer.run_once()
    return handled


def dead_letters(consumer: QueueReader) -> list[dict]:
    return [
        orjson.loads(entry) for entry in consumer.queue.redis.lrange(consumer.queue.dead, 0, -1)
    ]
