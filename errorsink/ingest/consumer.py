"""The ingest consumer: Redis list -> normalise -> PostgreSQL -> live notification.

It runs as a thread inside the Celery worker (see errorsink/celery.py), not as one task per
event. Items are taken in batches by an atomic move from the queue into this worker's own
processing list; the batch is written in one transaction; only then is the processing list
cleared. A worker that dies at any moment leaves its items in its processing list, and a live
worker moves them back onto the queue once the dead worker's heartbeat has expired: at least
once, and idempotent inserts make it exactly-once in the table.
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

import orjson
import redis
from django import db
from django.conf import settings

from errorsink.ingest.formats import BadItem, normalise_item
from errorsink.ingest.notify import Notifier
from errorsink.ingest.persist import events_persist, existing_projects, staging_row
from errorsink.ingest.queue import WorkerQueue, dead_letter, redis_client

log = logging.getLogger("errorsink.ingest")

BACKOFF_MAX_SECONDS = 5.0


@dataclass
class _OutageLog:
    """Logs an outage once when it starts and once when it ends, never once per attempt.
    Shared by the consumer threads of a process, so one outage is one line."""

    what: str
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


REDIS_OUTAGE = _OutageLog("Redis")
DATABASE_OUTAGE = _OutageLog("PostgreSQL")


@dataclass
class IngestConsumer:
    batch_size: int = 2000
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    notify: Callable[[dict], None] | None = None

    def __post_init__(self) -> None:
        self.queue = WorkerQueue(redis_client(), self.worker_id)
        self.stopping = threading.Event()
        self.redis_outage = REDIS_OUTAGE
        self.db_outage = DATABASE_OUTAGE

    # -- loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        log.info("ingest consumer %s reading %r", self.worker_id, self.queue.name)
        try:
            while not self.stopping.is_set():
                try:
                    self.run_once()
                except Exception:
                    # Nothing may end this thread: its items wait in the processing list,
                    # and the next round retries them.
                    log.exception("ingest consumer %s failed; retrying", self.worker_id)
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

    def _store_one_by_one(self, items: list[bytes]) -> None:
        """The slow path after an unexpected failure: whatever still fails alone is
        dead-lettered with the error, so one poisonous item never blocks the queue."""
        for item in items:
            try:
                self._store([item])
            except Exception as exc:
                reason = f"could not be stored: {type(exc).__name__}: {exc}"
                self._with_redis(lambda r=reason, i=item: self.queue.dead_letter([(i, r)]))

    # -- redis side ---------------------------------------------------------------------------

    def _with_redis(self, operation: Callable):
        delay = 0.1
        while True:
            try:
                result = operation()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.redis_outage.failed(exc)
                if self.stopping.wait(delay):
                    raise SystemExit from None
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            self.redis_outage.recovered()
            return result

    # -- database side ------------------------------------------------------------------------

    def _store(self, items: list[bytes]) -> None:
        received_at = datetime.now(UTC)
        rows, dead = self._normalise(items, received_at)
        stored, rejected = self._with_database(lambda: self._persist_isolating_bad_rows(rows))
        dead += rejected
        if dead:
            self._with_redis(lambda: self.queue.redis.rpush(self.queue.dead, *dead))
            log.warning("dead-lettered %d items (first reason: %s)", len(dead),
                        orjson.loads(dead[0])["reason"])  # fmt: skip
        if stored and self.notify is not None:
            self.notify(stored)

    def _normalise(self, items: list[bytes], received_at: datetime) -> tuple[list, list]:
        rows, dead, projects = [], [], {}
        for seq, item in enumerate(items):
            try:
                event = normalise_item(item)
                row = staging_row(seq, event, item.decode("utf-8"), received_at)
            except BadItem as exc:
                dead.append(dead_letter(item, exc.reason))
                continue
            except (TypeError, ValueError) as exc:  # e.g. nesting too deep to serialise
                dead.append(dead_letter(item, f"cannot be stored: {exc}"))
                continue
            projects.setdefault(event.project_id, []).append((item, row))
        known = self._with_database(lambda: existing_projects(set(projects)))
        for project_id, entries in projects.items():
            for item, row in entries:
                if project_id in known:
                    rows.append(row)
                else:
                    dead.append(dead_letter(item, f"unknown project {project_id}"))
        rows.sort(key=lambda row: row[0])
        return rows, dead

    def _persist_isolating_bad_rows(self, rows: list[tuple]) -> tuple[dict, list[bytes]]:
        """Store rows; if the database rejects the batch for its data, split it until the
        offending rows are alone. Returns what was stored and the dead letters of the rest
        (fresh on every attempt, so a retry after an outage never doubles them)."""
        try:
            return events_persist(rows).by_project, []
        except (db.DataError, db.IntegrityError) as exc:
            if len(rows) == 1:
                raw = rows[0][-1].encode()
                return {}, [dead_letter(raw, f"rejected by the database: {exc}".strip())]
            middle = len(rows) // 2
            stored, dead = self._persist_isolating_bad_rows(rows[:middle])
            more, more_dead = self._persist_isolating_bad_rows(rows[middle:])
            for project_id, events in more.items():
                stored.setdefault(project_id, []).extend(events)
            return stored, dead + more_dead

    def _with_database(self, operation: Callable):
        delay = 0.1
        while True:
            try:
                result = operation()
            except (db.OperationalError, db.InterfaceError) as exc:
                self.db_outage.failed(exc)
                db.connections.close_all()  # a broken connection must be replaced, not reused
                with contextlib.suppress(redis.RedisError):
                    self.queue.heartbeat()  # still alive: keep the held batch from being requeued
                if self.stopping.wait(delay):
                    raise SystemExit from None
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            self.db_outage.recovered()
            return result


def start_consumers(*, count: int, batch_size: int | None = None) -> IngestConsumers:
    """Start `count` consumer threads sharing one notifier, so a project gets one coalesced
    message per interval from the whole process, not one per thread."""
    notifier = Notifier()
    notifier.start()
    consumers = []
    for n in range(count):
        consumer = IngestConsumer(
            batch_size=batch_size or settings.ERRORSINK_INGEST_BATCH, notify=notifier.add
        )
        consumer.thread = threading.Thread(target=consumer.run, name=f"ingest-consumer-{n}")
        consumer.thread.daemon = True
        consumer.thread.start()
        consumers.append(consumer)
    return IngestConsumers(consumers, notifier)


@dataclass
class IngestConsumers:
    consumers: list[IngestConsumer]
    notifier: Notifier

    def stop(self, timeout: float = 30) -> None:
        """Let each thread finish its batch, then send the last notifications."""
        for consumer in self.consumers:
            consumer.stop()
        for consumer in self.consumers:
            consumer.thread.join(timeout=timeout)
        self.notifier.stop()
