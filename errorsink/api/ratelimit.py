"""A per-key request limit kept in Redis, shared by every web process.

A fixed window (one counter per key per window, INCR + EXPIRE in one round trip): at most twice
the limit can pass around a window boundary, which is acceptable for a limit meant to stop a
runaway script, and it costs a single Redis call per request.
"""

from __future__ import annotations

import math
import time

from django.conf import settings

from errorsink.connections import redis_client


def ratelimit_hit(*, bucket: str, limit: int | None = None) -> int | None:
    """Count one request; None if allowed, else the seconds until the window resets. The limit
    is ERRORSINK_API_RATE_LIMIT requests a window unless given."""
    limit = settings.ERRORSINK_API_RATE_LIMIT if limit is None else limit
    window = settings.ERRORSINK_API_RATE_WINDOW
    if limit <= 0:
        return None
    now = time.time()
    window_start = int(now // window) * window
    name = f"errorsink:ratelimit:{bucket}:{window_start}"
    pipe = redis_client().pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window + 1)
    count, _ = pipe.execute()
    if count <= limit:
        return None
    return max(1, math.ceil(window_start + window - now))
