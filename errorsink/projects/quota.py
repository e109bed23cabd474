"""What a project's ingest quota turned away: the front door counts refused events per minute
in Redis (errorsink/door/queueing.py), and the project page reads the last hour of counts."""

from __future__ import annotations

import time

from django.conf import settings

from errorsink.connections import redis_client

REFUSED_KEEP_SECONDS = 3700  # an hour of per-minute counts, and a minute's grace


def quota_refused_key(project_id: str, minute: int) -> str:
    return f"errorsink:quota-refused:{project_id}:{minute}"


def quota_refused_last_hour(*, project_id: object) -> int:
    """Events refused for the quota in the last 60 minutes (this one included)."""
    now = int(time.time()) // 60
    keys = [quota_refused_key(str(project_id), minute) for minute in range(now - 59, now + 1)]
    return sum(int(count) for count in redis_client().mget(keys) if count is not None)


def quota_effective(quota: int | None) -> int:
    """A project's quota in events a second (0: none): its own, else the server's default."""
    return settings.ERRORSINK_INGEST_QUOTA if quota is None else quota
