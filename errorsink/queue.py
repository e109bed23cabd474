"""The Redis side of ingest: the queue producers push onto and its dead-letter list."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    """One connection pool per process, shared by the API, the consumer and the commands."""
    return redis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)


def queue_name() -> str:
    return settings.ERRORSINK_QUEUE


def dead_letter_name() -> str:
    return f"{settings.ERRORSINK_QUEUE}:dead"


def enqueue(items: list[bytes | str]) -> int:
    """LPUSH items the way runner pods do (the worker takes from the other end: FIFO)."""
    if not items:
        return 0
    return redis_client().lpush(queue_name(), *items)
