from __future__ import annotations

import orjson
import pytest

from errorsink.ingest.consumer import IngestConsumer
from errorsink.ingest.queue import redis_client


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
    consumer = IngestConsumer(batch_size=500, notify=notifications.append)
    consumer.notifications = notifications
    return consumer


def drain(consumer: IngestConsumer) -> int:
    """Run the consumer until the queue is empty; returns how many items it handled."""
    handled = 0
    while consumer.queue.redis.llen(consumer.queue.name):
        handled += consumer.run_once()
    return handled


def dead_letters(consumer: IngestConsumer) -> list[dict]:
    return [
        orjson.loads(entry) for entry in consumer.queue.redis.lrange(consumer.queue.dead, 0, -1)
    ]
