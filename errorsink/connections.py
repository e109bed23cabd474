"""The process's one Redis connection pool, shared by the API's rate limit, ingest and commands."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    """One connection pool per process, shared by the API, the queue readers and the commands."""
    return redis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)
