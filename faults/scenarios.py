"""The scenarios of `make faults`. Each makes its own project, pushes items and breaks
something real, waits until everything is stored or dead-lettered, and returns its Tally."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devstack.harness import Stack
from devstack.processes import rss_mb
from faults.stack import (
    Pusher,
    Reviver,
    Tally,
    dead_letter_count,
    processes,
    queue_reset,
    settled,
    tally,
)


@dataclass(frozen=True)
class Sizes:
    kill_items: int = 100_000
    kills: int = 10
    outage_items: int = 20_000
    hostile_items: int = 5_000  # on the queue, and as many again through the API
    rate: float = 2_000.0  # items a second pushed
    scale_items: int = 1_500  # at 50 a second, so a dashboard shows every row
    boundary_items: int = 20_000  # each pushed twice


SHORT = Sizes(kill_items=10_000, kills=2, outage_items=4_000, hostile_items=500,
              scale_items=300, boundary_items=2_000)  # fmt: skip


def _project(name: str):
    from django.contrib.auth.models import User

    from errorsink.projects.services import project_create

    owner, _ = User.objects.get_or_create(username="faults")
    return project_create(name=f"faults {name} {uuid.uuid4().hex[:6]}", owner=owner)


def _items(count: int, project_id: str) -> list[bytes]:
    from bench.items import mixed_items

    return mixed_items(count, project_id, seed=random.randrange(10**6))


def worker_sigkill(env: dict, sizes: Sizes) -> Tally:
    """SIGKILL the worker at random moments while items arrive; a new one starts each time."""
    project, procs = _project("sigkill"), processes(env)
    queue_reset()
    items = _items(sizes.kill_items, str(project.id))
    try:
        worker = procs.worker()
        # Pushed at a pace the ten kills (each with a restart of a few seconds) fit inside.
        pusher = Pusher(items, sizes.rate * 0.6).start()
        moments = []
        for _ in range(sizes.kills):
            time.sleep(random.uniform(0.5, 3.0))
            moments.append(_stored(project.id))
            procs.kill(worker)
            worker = procs.worker()
        pusher.done.wait()
        settled(str(project.id), len(items), timeout=600)
        rss = rss_mb(worker.pid)
    finally:
        procs.stop()
    result = _tally(f"worker SIGKILL x{sizes.kills}", project, len(items), procs,
                    stored_at_kills=moments, worker_rss_mb=rss)  # fmt: skip
    if moments and moments[-1] >= len(items):
        result.notes["caveat"] = "the last kill came after every item was stored"
    return result


def partition_boundary(env: dict, sizes: Sizes) -> Tally:
    """Every item pushed twice across the event table's day boundary (docs/storage.md), while
    the worker is SIGKILLed: half the items as a producer that stamps a retry again sends them
    (the first copy dated the last moments of yesterday, UTC, the second the first moments of
    today, so the copies belong in different daily partitions), half with no time of their own
    (each copy takes its batch's arrival time). Each must be stored once."""
    project, procs = _project("boundary"), processes(env)
    queue_reset()
    first, second = _across_midnight(_items(sizes.boundary_items, str(project.id)))
    try:
        worker = procs.worker()
        pusher = Pusher(first + second, sizes.rate * 0.6).start()
        for _ in range(max(1, sizes.kills // 5)):
            time.sleep(random.uniform(0.5, 2.0))
            procs.kill(worker)
            worker = procs.worker()
        pusher.done.wait()
        settled(str(project.id), len(first), timeout=600)
    finally:
        procs.stop()
    return tally(f"re-sent across midnight, SIGKILL x{max(1, sizes.kills // 5)}",
                 str(project.id), pushed=len(first) + len(second), identities=len(first),
                 crashes_unasked=procs.crashed())  # fmt: skip


def _across_midnight(items: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Each item as first sent and as sent again."""
    import orjson

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first, second = [], []
    for n, raw in enumerate(items):
        item = {**orjson.loads(raw), "event_id": f"boundary-{n}"}
        if n % 2:
            before, after = (midnight - timedelta(milliseconds=n + 1),
                             midnight + timedelta(milliseconds=n + 1))  # fmt: skip
            first.append(orjson.dumps({**item, "occurred_at": before.isoformat()}))
            second.append(orjson.dumps({**item, "occurred_at": after.isoformat()}))
        else:
            item.pop("occurred_at", None)
            first.append(orjson.dumps(item))
            second.append(first[-1])
    return first, second


def redis_kill(env: dict, sizes: Sizes) -> Tally:
    """SIGKILL Redis mid-run; it comes back by itself on its append-only file, as under
    `make run`. A page opened just after must connect at the first try (the channel layer's
    pooled connections died with Redis)."""
    from django.contrib.auth.models import User

    from devstack import services

    project, procs = _project("redis"), processes(env)
    queue_reset()
    items = _items(sizes.outage_items, str(project.id))
    cookie = _session_cookie(User.objects.get(username="faults"))
    try:
        with Reviver(procs) as reviver:
            procs.worker()
            port = procs.web().port
            before = asyncio.run(_handshake(port, project, cookie))  # the layer's pool in use
            pusher = Pusher(items, sizes.rate).start()
            time.sleep(len(items) / sizes.rate / 3)
            services.redis_kill()
            back_after = reviver.wait_for("Redis")
            after = asyncio.run(_handshake(port, project, cookie))
            pusher.done.wait()
            settled(str(project.id), len(items), timeout=300)
    finally:
        procs.stop()
    result = _tally("Redis SIGKILLed, back by itself", project, len(items), procs,
                    pusher_retries=pusher.retries, back_after_seconds=back_after,
                    page_handshake_before_and_after=[before, after])  # fmt: skip
    if after != 101:
        result.notes["violations"] = f"a page opened after Redis came back got {after}"
    return result


def postgres_kill(env: dict, sizes: Sizes) -> Tally:
    """SIGKILL PostgreSQL's postmaster while items arrive; it comes back by itself (its stale
    lock files cleared), and the worker holds the items until it is."""
    from django.db import connection

    from devstack import services

    project, procs = _project("postgres"), processes(env)
    queue_reset()
    items = _items(sizes.outage_items, str(project.id))
    try:
        with Reviver(procs) as reviver:
            worker = procs.worker()
            pusher = Pusher(items, sizes.rate / 4).start()
            time.sleep(1.0)
            connection.close()
            services.postgres_kill()
            back_after = reviver.wait_for("PostgreSQL", timeout=120)
            pusher.done.wait()
            settled(str(project.id), len(items), timeout=300)
            alive = worker.poll() is None
    finally:
        procs.stop()
    return _tally("PostgreSQL SIGKILLed, back by itself", project, len(items), procs,
                  worker_stayed_up=alive, back_after_seconds=back_after)  # fmt: skip


async def _handshake(port: int, project, cookie: str) -> int:
    """The HTTP status of a live page's websocket handshake (101 when it connects)."""
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/projects/{project.id}/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=10):
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


def hostile(env: dict, sizes: Sizes) -> list[Tally]:
    """Hypothesis-made hostile items on the queue and through the API, then the queue's again:
    the worker's memory after each pass shows whether it keeps growing (it must level off)."""
    from faults.hostile import hostile_items

    procs = processes(env)
    queue_items = hostile_items(sizes.hostile_items, "QUEUE")
    try:
        worker = procs.worker()
        rss = [rss_mb(worker.pid)]
        port = procs.web().port
        queued = _hostile_queue(queue_items)
        rss.append(rss_mb(worker.pid))
        posted = _hostile_api(port, hostile_items(sizes.hostile_items, "API"))
        rss.append(rss_mb(worker.pid))
        again = _hostile_queue(queue_items)
        again.scenario = "hostile items on the queue, again"
        rss.append(rss_mb(worker.pid))
    finally:
        procs.stop()
    for result in (queued, posted, again):
        result.notes.update(worker_crashes=procs.crashed(),
                            worker_rss_mb_after_each_pass=rss)  # fmt: skip
    if procs.crashed():
        queued.notes["violations"] = f"{procs.crashed()} worker or web crashes"
    return [queued, posted, again]


def _hostile_queue(raw: list[bytes]) -> Tally:
    from errorsink.ingest.batch import batch_rows
    from errorsink.ingest.queue import enqueue

    project = _project("hostile-queue")
    queue_reset()
    items = [item.replace(b"QUEUE", str(project.id).encode()) for item in raw]
    identities = _identities(batch_rows, items)
    for offset in range(0, len(items), 200):
        enqueue(items[offset : offset + 200])
    settled(str(project.id), identities, timeout=300)
    result = tally("hostile items on the queue", str(project.id), pushed=len(items),
                   identities=identities, same_as_another=len(items) - identities)  # fmt: skip
    result.notes["dead_letters_without_reason"] = _dead_letters_without_reason()
    if result.notes["dead_letters_without_reason"]:
        result.notes["violations"] = "a dead letter without its reason"
    return result


def _identities(batch_rows, items: list[bytes]) -> int:
    """Distinct events the items should become plus those that cannot be one."""
    from datetime import UTC, datetime

    batch = batch_rows(items, received_at=datetime.now(UTC))
    return len({row.event_id for row in batch.rows}) + len(batch.rejected)


def _hostile_api(port: int, raw: list[bytes]) -> Tally:
    import httpx

    from errorsink.projects.api_keys import api_key_create

    project = _project("hostile-api")
    queue_reset()
    _, key = api_key_create(project=project, scopes="errors:write")
    url = f"http://127.0.0.1:{port}/api/v1/projects/{project.id}/events"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    accepted: set[str] = set()
    with httpx.Client(timeout=30) as client:
        for body in raw:
            response = client.post(url, content=body.replace(b"API", str(project.id).encode()),
                                   headers=headers)  # fmt: skip
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 202:
                accepted.update(response.json()["event_ids"])
    settled(str(project.id), len(accepted), timeout=300)
    result = tally("hostile items through the API", str(project.id), pushed=len(raw),
                   identities=len(accepted) + sum(n for s, n in statuses.items() if s != 202),
                   statuses=dict(sorted(statuses.items())))  # fmt: skip
    # Refused items get an answer, not a place in the store: count them as "dead" here.
    result.dead_lettered = sum(n for status, n in statuses.items() if status != 202)
    stored_ids = set(_stored_ids(project.id))
    result.lost = len(accepted - stored_ids)
    violations = []
    if statuses.get(500):
        violations.append(f"{statuses[500]} API 500s")
    if dead_letter_count():
        violations.append(f"{dead_letter_count()} accepted items dead-lettered by the worker")
        result.notes["dead_letter_reasons"] = _dead_letter_reasons()
    if violations:
        result.notes["violations"] = "; ".join(violations)
    result.notes.update(refused_by_the_api=result.dead_lettered, accepted_ids=len(accepted))
    return result


def _dead_letter_reasons(limit: int = 5) -> list[str]:
    import orjson

    from errorsink.ingest.queue import dead_letter_name, redis_client

    entries = redis_client().lrange(dead_letter_name(), 0, limit - 1)
    return [orjson.loads(entry).get("reason", "")[:200] for entry in entries]


def _dead_letters_without_reason() -> int:
    import orjson

    from errorsink.ingest.queue import dead_letter_name, redis_client

    entries = redis_client().lrange(dead_letter_name(), 0, -1)
    return sum(not orjson.loads(entry).get("reason") for entry in entries)


def _stored(project_id) -> int:
    from errorsink.sessions.models import Event

    return Event.objects.filter(project_id=project_id).count()


def _stored_ids(project_id) -> list[str]:
    from errorsink.sessions.models import Event

    return list(Event.objects.filter(project_id=project_id).values_list("event_id", flat=True))


def _tally(name: str, project, pushed: int, procs: Stack, **notes) -> Tally:
    notes["crashes_unasked"] = procs.crashed()
    return tally(name, str(project.id), pushed=pushed, identities=pushed,
                 dead_before=0, **notes)  # fmt: skip


def scale_out(env: dict, sizes: Sizes) -> Tally:
    """Two Daphne and two workers on one Redis and one PostgreSQL, as compose replicas run:
    dashboards on either Daphne must receive every event, and when one worker is SIGKILLed
    (not restarted) the other takes over its in-flight items."""
    from django.contrib.auth.models import User

    project, procs = _project("scale-out"), processes(env)
    queue_reset()
    count = sizes.scale_items
    items = _items(count, str(project.id))
    try:
        workers = [procs.worker(), procs.worker()]
        ports = [procs.web().port, procs.web().port]
        cookie = _session_cookie(User.objects.get(username="faults"))
        seen, in_flight = asyncio.run(
            _watch_while_pushing(ports, project, cookie, items, workers, procs)
        )
        settled(str(project.id), count, timeout=300)
        survivor_alive = workers[1].poll() is None
    finally:
        procs.stop()
    from errorsink.sessions.models import Event

    # The project page's live table shows errors (warnings and ends go to the quality figures).
    errors = Event.objects.filter(project_id=project.id, kind=Event.ERROR)
    stored_pks = set(errors.values_list("pk", flat=True))
    missed = {f"dashboard {n} (daphne :{port})": len(stored_pks - pks)
              for n, (port, pks) in enumerate(seen)}  # fmt: skip
    result = _tally("2 Daphne + 2 workers, 1 killed", project, count, procs,
                    survivor_alive=survivor_alive, in_flight_at_kill=in_flight,
                    events_missed_by_dashboard=missed)  # fmt: skip
    if any(missed.values()):
        result.notes["violations"] = "a dashboard missed events"
    return result


async def _watch_while_pushing(ports, project, cookie, items, workers, procs) -> tuple:
    """Two dashboards per Daphne; push at a pace a page shows every row of; kill worker 0
    half way. Returns (port, event pks seen) per dashboard, and the items in flight at the
    kill."""
    import re

    import websockets

    from errorsink.ingest.queue import enqueue
    from errorsink.sessions.models import Event

    row = re.compile(r'data-event="(\d+)"')
    stop = asyncio.Event()
    dashboards = [(port, set()) for port in ports for _ in range(2)]

    async def watch(port: int, pks: set) -> None:
        url = f"ws://127.0.0.1:{port}/ws/projects/{project.id}/"
        headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            while not stop.is_set():
                try:
                    pks.update(
                        int(pk) for pk in row.findall(await asyncio.wait_for(ws.recv(), 0.2))
                    )
                except TimeoutError:
                    continue

    tasks = [asyncio.create_task(watch(port, pks)) for port, pks in dashboards]
    in_flight = 0
    await asyncio.sleep(2)
    for n in range(0, len(items), 5):  # 5 items every 100 ms: 50 a second
        enqueue(items[n : n + 5])
        if n == len(items) // 2:
            in_flight = _in_flight()
            procs.kill(workers[0])
        await asyncio.sleep(0.1)
    # Worker 0's in-flight batch comes back after its heartbeat expires (ERRORSINK_HEARTBEAT_TTL).
    deadline = asyncio.get_running_loop().time() + 90
    while asyncio.get_running_loop().time() < deadline:
        stored = await asyncio.to_thread(
            lambda: Event.objects.filter(project_id=project.id).count()
        )
        # Stored is not enough: if worker 0 died between its commit and its notice, its batch
        # is still in its processing list, and the notice comes when another worker takes it.
        if stored >= len(items) and not await asyncio.to_thread(_waiting):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the last pushes on their way
    stop.set()
    await asyncio.gather(*tasks)
    return dashboards, in_flight


def _in_flight() -> int:
    """Items taken by workers and not yet stored (their processing lists)."""
    from errorsink.ingest.queue import processing_prefix, redis_client

    client = redis_client()
    return sum(client.llen(key) for key in client.scan_iter(processing_prefix() + "*"))


def _waiting() -> int:
    """Items on the queue or in a processing list: pushed and not yet stored and announced."""
    from errorsink.ingest.queue import queue_name, redis_client

    return redis_client().llen(queue_name()) + _in_flight()


def _session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
