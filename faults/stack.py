"""The fault suite's own stack: embedded PostgreSQL and Redis in `.errorsink/faults` (stopped
and killed by the scenarios, so never the development stack's), real Celery workers and Daphne
started with devstack's command lines, and the counts a scenario reports."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.harness import Stack, environment

CHECKOUT = Path(__file__).resolve().parent.parent
STATE_DIR = CHECKOUT / ".errorsink" / "faults"


def prepare() -> dict[str, str]:
    """Start (or find) the suite's own services, migrate, set Django up; the environment for
    its subprocesses. Must run before anything imports devstack.services."""
    os.environ["ERRORSINK_STATE_DIR"] = str(STATE_DIR)
    for name in ("DATABASE_URL", "REDIS_URL", "ERRORSINK_REDIS_DB", "SECRET_KEY"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from devstack import services
    from devstack.processes import executable, migrate_command

    services.activate()
    env = environment(database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"],
                      ERRORSINK_API_RATE_LIMIT="0")  # fmt: skip
    subprocess.run(executable([*migrate_command(), "-v", "0"]), cwd=CHECKOUT, env=env,
                   check=True)  # fmt: skip
    import django

    django.setup()
    return env


def processes(env: dict[str, str]) -> Stack:
    """A scenario's workers and web servers, on the suite's services, logs in a fresh folder."""
    return Stack(env, Path(tempfile.mkdtemp(prefix="errorsink-faults-")))


@dataclass
class Pusher:
    """LPUSHes items in batches at a rate from a thread, as runner pods do; a batch that meets a
    Redis outage is pushed again until Redis takes it (a resend is stored once by event_id)."""

    items: list[bytes]
    per_second: float
    batch: int = 200
    pushed: int = 0
    retries: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Pusher:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        import redis

        from errorsink.ingest.queue import enqueue

        started = time.monotonic()
        for offset in range(0, len(self.items), self.batch):
            chunk = self.items[offset : offset + self.batch]
            due = started + offset / self.per_second
            time.sleep(max(0.0, due - time.monotonic()))
            while True:
                try:
                    enqueue(chunk)
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    self.retries += 1
                    time.sleep(0.2)
            self.pushed += len(chunk)
        self.done.set()


def dead_letter_count() -> int:
    from errorsink.ingest.queue import dead_letter_name, dead_letters_dropped_name, redis_client

    client = redis_client()
    return client.llen(dead_letter_name()) + int(client.get(dead_letters_dropped_name()) or 0)


def queue_reset() -> None:
    from errorsink.ingest.queue import (
        dead_letter_name,
        dead_letters_dropped_name,
        processing_prefix,
        queue_name,
        redis_client,
    )

    client = redis_client()
    names = [queue_name(), dead_letter_name(), dead_letters_dropped_name(),
             *client.scan_iter(processing_prefix() + "*")]  # fmt: skip
    client.delete(*names)


def settled(project_id: str, expected: int, timeout: float) -> None:
    """Wait until the queue and every processing list are empty and ``expected`` items are
    stored or dead-lettered (or the count stops moving for 40 s: a dead worker's list is
    requeued 30 s after its last heartbeat)."""
    from django.db import connection

    from errorsink.ingest.queue import processing_prefix, queue_name, redis_client
    from errorsink.sessions.models import Event

    deadline, last, still_since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            client = redis_client()
            waiting = client.llen(queue_name()) + sum(
                client.llen(key) for key in client.scan_iter(processing_prefix() + "*")
            )
            count = Event.objects.filter(project_id=project_id).count() + dead_letter_count()
        except Exception:  # an outage the scenario made: ask again
            connection.close()
            time.sleep(0.5)
            continue
        if count != last:
            last, still_since = count, time.monotonic()
        if waiting == 0 and (count >= expected or time.monotonic() - still_since > 40):
            return
        time.sleep(0.25)
    raise RuntimeError(f"not settled after {timeout:.0f} s ({last} of {expected})")


@dataclass
class Tally:
    scenario: str
    pushed: int
    stored: int
    dead_lettered: int
    lost: int
    duplicated: int
    notes: dict = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.notes.get("violations")


def tally(scenario: str, project_id: str, *, pushed: int, identities: int,
          dead_before: int = 0, **notes) -> Tally:  # fmt: skip
    """Counts for a scenario's project: ``identities`` is how many distinct events the pushed
    items should become or be dead-lettered as (equal items collapse into one event)."""
    from errorsink.issues.models import Issue
    from errorsink.sessions.models import Event

    events = Event.objects.filter(project_id=project_id)
    rows = events.count()
    stored = events.values("event_id").distinct().count()
    dead = dead_letter_count() - dead_before
    issue_events = sum(
        Issue.objects.filter(project_id=project_id).values_list("event_count", flat=True)
    )
    errors = events.filter(kind=Event.ERROR).count()
    counted_twice = max(0, issue_events - errors)  # an issue counter that counted a row twice
    notes["issue_counters_equal_recount"] = issue_events == errors
    return Tally(scenario, pushed, stored, dead, max(0, identities - stored - dead),
                 rows - stored + counted_twice, notes)  # fmt: skip


class Reviver:
    """What `make run` does for its embedded services, once a second, for a scenario that
    kills them: reap what died and start it again (devstack.services.services_revive). The
    scenario never restarts a server itself: it comes back by itself, or the scenario fails."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.restarted: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="services-reviver", daemon=True)

    def __enter__(self) -> Reviver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def wait_for(self, name: str, timeout: float = 60.0) -> float:
        """Seconds until ``name`` ("Redis", "PostgreSQL") was started again."""
        started = time.monotonic()
        while name not in self.restarted:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name} did not come back within {timeout:.0f} s")
            time.sleep(0.1)
        return round(time.monotonic() - started, 1)

    def _run(self) -> None:
        from devstack import services

        while not self._stopping.wait(1.0):
            keep = {proc.pid for proc in self.stack.started}
            self.restarted += services.services_revive(keep=keep)
