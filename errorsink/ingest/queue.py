"""The Redis side of ingest: the queue producers push onto, each worker's processing list and
heartbeat, the requeueing of a dead worker's items, and the dead-letter list.

A worker takes a batch by moving it atomically from the queue into its own processing list and
clears that list only once the batch is stored. A worker that dies at any moment leaves its items
there; a live worker moves them back onto the queue once the dead one's heartbeat has expired:
at least once, and idempotent inserts make it exactly once in the table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis
from django.conf import settings

from errorsink.connections import redis_client

log = logging.getLogger("errorsink.ingest")

BLOCK_SECONDS = 1

# Atomically move up to ARGV[1] of the oldest items (the right end: producers LPUSH) into the
# processing list, oldest first, and return the whole processing list (which may already hold
# the item a blocking BLMOVE took). Nothing can be lost between the two lists.
_TAKE_BATCH = """
local want = tonumber(ARGV[1])
local items = {}
if want > 0 then items = redis.call('LRANGE', KEYS[1], -want, -1) end
local n = #items
if n > 0 then
  redis.call('LTRIM', KEYS[1], 0, -n - 1)
  local oldest_first = {}
  for i = n, 1, -1 do oldest_first[#oldest_first + 1] = items[i] end
  for i = 1, n, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(oldest_first, i, math.min(i + 999, n)))
  end
end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""

# Put a dead worker's items back at the consuming end of the queue, in their original order.
_RECLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do redis.call('RPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1])
return #items
"""

# One thread of a process takes at a time, so batches leave the queue in FIFO order and their
# received_at order matches the queue's (no interleaving within a burst).
_TAKE_LOCK = threading.Lock()

# While items keep coming, a process takes at most one batch this often (see TakePace).
TAKE_EVERY_SECONDS = 0.05


@dataclass
class TakePace:
    """When the readers of one process may take again: at once after a quiet spell or a full
    batch (a backlog), otherwise ``every`` seconds after the last take.

    A batch costs PostgreSQL about the same for 25 events as for 100 (a transaction and ten
    statements), and readers that take whatever is there the moment they are free ran 80 small
    batches a second at 2,000 events/s: half a core of PostgreSQL and a third of the worker for
    work that 20 batches do with half (docs/benchmarks.md). The live pages lose nothing: their
    pushes were already merged per 50 ms, and this is now where that happens."""

    every: float = TAKE_EVERY_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(default=0.0, init=False)

    def wait(self) -> None:
        delay = self._next - self.clock()
        if delay > 0:
            self.sleep(delay)

    def taken(self, count: int, batch_size: int) -> None:
        self._next = 0.0 if count >= batch_size else self.clock() + self.every


def queue_name() -> str:
    return settings.ERRORSINK_QUEUE


def dead_letter_name() -> str:
    return f"{settings.ERRORSINK_QUEUE}:dead"


def processing_prefix() -> str:
    return f"{queue_name()}:processing:"


def heartbeat_every(ttl: int) -> float:
    """How often a worker renews its heartbeat and looks for dead workers: six times a TTL,
    at most every 5 s, so a live worker's key never expires between two renewals."""
    return min(5.0, ttl / 6)


def heartbeat_key(worker_id: str) -> str:
    return f"{queue_name()}:worker:{worker_id}"


def enqueue(items: list[bytes | str]) -> int:
    """LPUSH items the way runner pods do (the worker takes from the other end: FIFO)."""
    if not items:
        return 0
    return redis_client().lpush(queue_name(), *items)


def dead_letter(item: bytes, reason: str) -> bytes:
    """The dead-letter entry of docs/formats.md: reason, the original text, and when. An item
    over ERRORSINK_DEAD_ITEM_MAX_BYTES keeps only its start, marked with its full size: ten
    10 MB items must not take Redis's memory (the reason says what was wrong)."""
    limit = settings.ERRORSINK_DEAD_ITEM_MAX_BYTES
    text = item[:limit].decode("utf-8", errors="replace")
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    entry = {"reason": reason, "item": text, "at": at}
    if len(item) > limit:
        entry.update(truncated=True, size=len(item))
    return orjson.dumps(entry)


def dead_letters_dropped_name() -> str:
    return f"{dead_letter_name()}:dropped"


# Append dead letters, then keep only the newest ARGV[1] and count what went.
_DEAD_LETTER_PUSH = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
local over = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
    redis.call('LTRIM', KEYS[1], over, -1)
    redis.call('INCRBY', KEYS[2], over)
    return over
end
return 0
"""


@dataclass
class WorkerQueue:
    """One worker's end of the queue: what it takes waits in its processing list until
    ``acknowledge``, and its heartbeat keeps other workers from requeueing it meanwhile."""

    redis: redis.Redis
    worker_id: str
    pace: TakePace | None = None  # shared by the readers of a process; None takes at once
    _next_heartbeat: float = field(default=0.0, init=False)
    _next_reclaim: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.name = queue_name()
        self.dead = dead_letter_name()
        self.processing = processing_prefix() + self.worker_id
        self._take_batch = self.redis.register_script(_TAKE_BATCH)
        self._reclaim = self.redis.register_script(_RECLAIM)
        self._dead_letter_push = self.redis.register_script(_DEAD_LETTER_PUSH)

    def take(self, batch_size: int) -> list[bytes]:
        """The processing list: what an earlier round left unacknowledged, plus up to
        ``batch_size`` of the oldest items; waits up to BLOCK_SECONDS when both are empty, and
        first for its turn when the queue has a pace."""
        with _TAKE_LOCK:
            self._housekeeping()
            if self.pace is not None:
                self.pace.wait()
            items = self._take_batch(keys=[self.name, self.processing], args=[batch_size])
            if not items:
                first = self.redis.blmove(self.name, self.processing, BLOCK_SECONDS, "RIGHT",
                                          "LEFT")  # fmt: skip
                if first is None:
                    return []
                # Sweep up whatever came with the first item.
                items = self._take_batch(keys=[self.name, self.processing], args=[batch_size - 1])
            if self.pace is not None:
                self.pace.taken(len(items), batch_size)
            return items

    def acknowledge(self) -> None:
        """The batch is stored: it must never be requeued."""
        self.redis.delete(self.processing)

    def dead_letter(self, rejected: Iterable[tuple[bytes, str]]) -> None:
        """Append, keeping the newest ERRORSINK_DEAD_LETTERS_MAX; the oldest beyond are dropped
        and counted (``<queue>:dead:dropped``, shown by ingest_status and the page)."""
        entries = [dead_letter(item, reason) for item, reason in rejected]
        for start in range(0, len(entries), 1000):  # Lua's unpack has a limit on arguments
            dropped = self._dead_letter_push(
                keys=[self.dead, dead_letters_dropped_name()],
                args=[settings.ERRORSINK_DEAD_LETTERS_MAX, *entries[start : start + 1000]],
            )
            if dropped:
                log.warning("dead-letter list full: dropped its %d oldest entries", dropped)

    def heartbeat(self) -> None:
        """Tell other workers this one is alive, so its processing list is left alone."""
        if time.monotonic() >= self._next_heartbeat:
            ttl = settings.ERRORSINK_HEARTBEAT_TTL
            self.redis.set(heartbeat_key(self.worker_id), "1", ex=ttl)
            self._next_heartbeat = time.monotonic() + heartbeat_every(ttl)

    def reclaim_dead_workers(self) -> int:
        """Requeue the processing lists of workers whose heartbeat has expired."""
        moved = 0
        for key in self.redis.scan_iter(match=processing_prefix() + "*", count=100):
            worker_id = key.decode().removeprefix(processing_prefix())
            if worker_id == self.worker_id or self.redis.exists(heartbeat_key(worker_id)):
                continue
            count = self._reclaim(keys=[key, self.name])
            if count:
                log.warning("requeued %d items of dead worker %s", count, worker_id)
            moved += count
        return moved

    def _housekeeping(self) -> None:
        self.heartbeat()
        if time.monotonic() >= self._next_reclaim:
            self.reclaim_dead_workers()
            self._next_reclaim = time.monotonic() + heartbeat_every(
                settings.ERRORSINK_HEARTBEAT_TTL
            )
