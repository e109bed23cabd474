"""The door's one Redis call per request: check that the grants it decided with are current,
count the events against the project's quota, and queue them, atomically.

The quota is a counter per project per second shared by every web process (a fixed window: a
burst across a second's edge may pass up to twice the quota for that moment). Events refused
for the quota are counted per minute, so the dashboard can say how many were turned away.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings

from errorsink.ingest.queue import queue_name
from errorsink.projects.grants import GRANTS_VERSION_KEY, Grants
from errorsink.projects.quota import REFUSED_KEEP_SECONDS, quota_refused_key

# KEYS: queue, grants version, this second's quota counter, this minute's refused counter.
# ARGV: the version decided with ('' for none), the quota (0: none), 1 to queue what fits when
# not all do (else all or nothing), then the items. Returns {'ok'|'stale'|'quota', queued}.
_QUEUE_CHECKED = (
    """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return {'stale', 0} end
local n = #ARGV - 3
if n == 0 then return {'ok', 0} end
local limit = tonumber(ARGV[2])
local take = n
if limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  local room = math.max(0, limit - used)
  if room < n then
    take = (ARGV[3] == '1') and room or 0
    redis.call('INCRBY', KEYS[4], n - take)
    redis.call('EXPIRE', KEYS[4], REFUSED_KEEP)
  end
  if take == 0 then return {'quota', 0} end
  redis.call('INCRBY', KEYS[3], take)
  redis.call('EXPIRE', KEYS[3], 2)
end
for i = 4, 3 + take, 1000 do
  redis.call('LPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, 3 + take)))
end
return {'ok', take}
"""
).replace("REFUSED_KEEP", str(REFUSED_KEEP_SECONDS))


@dataclass(frozen=True)
class Queued:
    outcome: str  # "ok", "stale" (decide again with fresh grants) or "quota"
    count: int  # items queued: the first ``count`` of those given


_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def door_redis() -> tuple[aioredis.Redis, object]:
    """The door's asyncio client and its script, one per event loop (Daphne runs one)."""
    loop = asyncio.get_running_loop()
    found = _connections.get(loop)
    if found is None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)
        found = (client, client.register_script(_QUEUE_CHECKED))
        _connections[loop] = found
    return found


async def queue_checked(
    items: list[bytes], *, project_id: str, grants: Grants, partial: bool = False
) -> Queued:
    _, script = door_redis()
    now = int(time.time())
    keys = [queue_name(), GRANTS_VERSION_KEY, f"errorsink:quota:{project_id}:{now}",
            quota_refused_key(project_id, now // 60)]  # fmt: skip
    args = [grants.version or b"", grants.quota_of(project_id), int(partial), *items]
    outcome, count = await script(keys=keys, args=args)
    return Queued(outcome.decode(), int(count))


async def door_connections_close() -> None:
    """Close this loop's client: for a loop about to end (tests run a loop per request)."""
    found = _connections.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found[0].aclose()
