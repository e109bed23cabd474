"""The queue reader threads: each takes a batch off the queue, turns it into rows, stores
them, dead-letters what was refused, notifies the dashboards, and only then acknowledges it.

They run inside the Celery worker (config/celery.py starts them), not as one task per event. While
Redis or PostgreSQL is down a thread holds its batch and retries with back-off; the queue module
tells why a batch survives the worker's death.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from django import db
from django.conf import settings

from errorsink.ingest.batch import Rejected, batch_rows
from errorsink.ingest.notify import Notifier
from errorsink.ingest.persist import batch_persist
from errorsink.ingest.queue import TakePace, WorkerQueue, redis_client

log = logging.getLogger("errorsink.ingest")

BACKOFF_MAX_SECONDS = 5.0


@dataclass
class Dependency:
    """A service the reader waits for: the errors that mean it is down, and its outage,
    logged once when it starts and once when it ends, never once per attempt. Shared by the
    reader threads of a process, so one outage is one line."""

    what: str
    errors: tuple[type[Exception], ...]
    since: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, exc: Exception) -> None:
        with self.lock:
            if self.since is None:
                self.since = time.monotonic()
                log.error("%s unreachable (%s); holding the batch and retrying", self.what, exc)

    def recovered(self) -> None:
        with self.lock:
            if self.since is not None:
                took = time.monotonic() - self.since
                log.warning("%s reachable again after %.1fs", self.what, took)
                self.since = None


REDIS = Dependency("Redis", (redis.ConnectionError, redis.TimeoutError))
POSTGRES = Dependency("PostgreSQL", (db.OperationalError, db.InterfaceError))


@dataclass
class QueueReader:
    batch_size: int = 2000
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    notify: Callable[[dict], None] | None = None
    pace: TakePace | None = None

    def __post_init__(self) -> None:
        self.queue = WorkerQueue(redis_client(), self.worker_id, pace=self.pace)
        self.stopping = threading.Event()

    def run(self) -> None:
        log.info("queue reader %s reading %r", self.worker_id, self.queue.name)
        try:
            while not self.stopping.is_set():
                try:
                    self.run_once()
                except Exception:
                    # Nothing may end this thread: its items wait in the processing list,
                    # and the next round retries them.
                    log.exception("queue reader %s failed; retrying", self.worker_id)
                    self.stopping.wait(1)
        finally:
            db.connections.close_all()

    def stop(self) -> None:
        self.stopping.set()

    def run_once(self) -> int:
        """Take, store and acknowledge one batch; returns how many items it handled."""
        items = self._with_redis(lambda: self.queue.take(self.batch_size))
        if not items:
            return 0
        try:
            self._store(items)
        except Exception:
            log.exception("a batch of %d failed unexpectedly; storing it item by item", len(items))
            self._store_one_by_one(items)
        self._with_redis(self.queue.acknowledge)
        return len(items)

    def _store(self, items: list[bytes]) -> None:
        batch = batch_rows(items, received_at=datetime.now(UTC))
        persisted = self._with_database(lambda: batch_persist(batch.rows))
        rejected = batch.rejected + [
            Rejected(items[row.seq], reason) for row, reason in persisted.rejected
        ]
        if rejected:
            self._with_redis(lambda: self.queue.dead_letter(rejected))
            log.warning("dead-lettered %d items (first reason: %s)", len(rejected),
                        rejected[0].reason)  # fmt: skip
        announced = persisted.stored.to_announce()
        if announced and self.notify is not None:
            self.notify(announced)

    def _store_one_by_one(self, items: list[bytes]) -> None:
        """The slow path after an unexpected failure: whatever still fails alone is
        dead-lettered with the error, so one poisonous item never blocks the queue."""
        for item in items:
            try:
                self._store([item])
            except Exception as exc:
                rejected = [Rejected(item, f"could not be stored: {type(exc).__name__}: {exc}")]
                self._with_redis(lambda r=rejected: self.queue.dead_letter(r))

    def _with_redis(self, operation: Callable):
        return self._waiting_for(REDIS, operation)

    def _with_database(self, operation: Callable):
        return self._waiting_for(POSTGRES, operation, after_failure=self._database_failed)

    def _waiting_for(
        self, dependency: Dependency, operation: Callable, *, after_failure: Callable = lambda: None
    ):
        """``operation``'s result, retried with back-off for as long as ``dependency`` is down."""
        delay = 0.1
        while True:
            try:
                result = operation()
            except dependency.errors as exc:
                dependency.failed(exc)
                after_failure()
                if self.stopping.wait(delay):
                    raise SystemExit from None
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            dependency.recovered()
            return result

    def _database_failed(self) -> None:
        db.connections.close_all()  # a broken connection must be replaced, not reused
        with contextlib.suppress(redis.RedisError):
            self.queue.heartbeat()  # still alive: keep the held batch from being requeued


def queue_readers_start(*, count: int, batch_size: int | None = None) -> QueueReaders:
    """Start `count` reader threads sharing one pace (the process takes at most one batch per
    interval while items keep coming) and one notifier (a project gets one message per
    interval from the whole process, not one per thread)."""
    notifier = Notifier()
    notifier.start()
    pace = TakePace()
    readers = []
    for n in range(count):
        reader = QueueReader(batch_size=batch_size or settings.ERRORSINK_INGEST_BATCH,
                             notify=notifier.add, pace=pace)  # fmt: skip
        reader.thread = threading.Thread(target=reader.run, name=f"queue-reader-{n}")
        reader.thread.daemon = True
        reader.thread.start()
        readers.append(reader)
    return QueueReaders(readers, notifier)


@dataclass
class QueueReaders:
    readers: list[QueueReader]
    notifier: Notifier

    def stop(self, timeout: float = 30) -> None:
        """Let each thread finish its batch, then send the last notifications."""
        for reader in self.readers:
            reader.stop()
        for reader in self.readers:
            reader.thread.join(timeout=timeout)
        self.notifier.stop()
