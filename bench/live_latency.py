"""Live latency: LPUSH onto the queue until the row reaches 50 open project pages.

Starts its own Daphne and Celery worker (with its queue readers) against the bench database and
Redis number (bench/common.py), opens 50 websocket clients on one throwaway project exactly as
the browser does (session cookie, Origin header), then pushes session_error items at 100 and at
1,000 events per second from a separate thread and timestamps every websocket message.

Two figures per rate, both per (client, event) pair:
- `p50_ms`/`p99_ms` ("on screen"): LPUSH until the first message carrying that event or a newer
  one. A page shows the newest 20 rows, so at 1,000/s most events are pushed off before any
  push could carry them; this is when the page stopped being behind that event.
- `contained`: the same, counted only for events that appear in a message themselves.

Run with `make bench` (or `python -m bench.live_latency`); prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from bisect import bisect_left
from pathlib import Path

from bench.common import bench_env, create_database, migrate, percentile, replace_path
from bench.cpu import process_cpu_seconds
from devstack.harness import Stack

CLIENTS = int(os.environ.get("BENCH_LIVE_CLIENTS", "50"))
RATES = (100, 1_000)
SECONDS = int(os.environ.get("BENCH_LIVE_SECONDS", "10"))
WARMUP_EVENTS = 50
TICK = 0.01  # the producer pushes every 10 ms whatever is due by then
TARGET_P99_MS = 250
# Its own database and Redis number, so it never disturbs the ingest benchmark's tables.
DATABASE = "errorsink_bench_live"
REDIS_DB = "13"
TOKEN = re.compile(r"bench~(\d+)~(\d+)~")
ROW = re.compile(r'<tr id="event-(\d+)".*?bench~(\d+)~(\d+)~', re.S)


def _item(project_id: str, phase: int, seq: int) -> bytes:
    return json.dumps(
        {
            "type": "session_error",
            "code": "AGENT_CHILD_CRASHED",
            "project_id": project_id,
            "message": f"bench~{phase}~{seq}~ handler threw",
            "session_id": f"bench-{seq % 200}",
            "build_id": "bench",
            "recoverable": False,
            "event_id": str(uuid.uuid4()),
        }  # fmt: skip
    ).encode()


def _produce(project_id: str, phase: int, rate: int, count: int, pushed: dict) -> float:
    """Push `count` items at `rate`/s from this thread; record each item's push time."""
    from errorsink.ingest.queue import queue_name, redis_client

    client, queue = redis_client(), queue_name()
    started = time.perf_counter()
    seq = 0
    while seq < count:
        due = min(count, int((time.perf_counter() - started) * rate) + 1)
        if due > seq:
            batch = [_item(project_id, phase, n) for n in range(seq, due)]
            now = time.perf_counter()
            client.lpush(queue, *batch)
            for n in range(seq, due):
                pushed[(phase, n)] = now
            seq = due
        time.sleep(TICK)
    return count / (time.perf_counter() - started)


class Client:
    """One open project page: every message with its arrival time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str]] = []
        self.ready = asyncio.Event()

    async def run(self, url: str, headers: dict, stop_event: asyncio.Event) -> None:
        import websockets

        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            await ws.recv()  # the initial table
            self.ready.set()
            while not stop_event.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=0.2)
                except TimeoutError:
                    continue
                self.messages.append((time.perf_counter(), text))


def _latencies(
    client: Client, phase: int, pushed: dict, count: int, notified: dict, stride: int = 1
) -> tuple[list, list, list]:
    """On-screen latencies for every event reached (as (seq, ms) pairs), latencies of events
    carried themselves, and for those the part after the ingest worker's notification reached
    Daphne's process (ms). ``stride`` > 1 times every stride-th event only."""
    arrivals: list[float] = []  # time of each message, and the newest seq it has carried so far
    newest: list[int] = []
    contained: list[float] = []
    after_notify: list[float] = []
    high = -1
    for received, text in client.messages:
        rows = [(int(pk), int(s)) for pk, p, s in ROW.findall(text) if int(p) == phase]
        if not rows:
            continue
        for pk, seq in rows:
            contained.append((received - pushed[(phase, seq)]) * 1000)
            if pk in notified:
                after_notify.append((received - notified[pk]) * 1000)
        high = max(high, *(seq for _, seq in rows))
        arrivals.append(received)
        newest.append(high)
    on_screen = []
    for seq in range(0, count, stride):
        index = bisect_left(newest, seq)
        if index < len(newest):
            on_screen.append((seq, (arrivals[index] - pushed[(phase, seq)]) * 1000))
    return on_screen, contained, after_notify


async def _listen(notified: dict, project_id: str) -> None:
    """Note when each event's notification is published, as a page's process would see it."""
    from channels.layers import get_channel_layer

    from errorsink.live import group_name

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(project_id), channel)
    while True:
        message = await layer.receive(channel)
        now = time.perf_counter()
        for pk, *_ in message.get("events", ()):  # not the quality and alert notices
            notified.setdefault(pk, now)


async def _measure(url: str, headers: dict, project_id: str, pids: dict) -> list[dict]:
    stop_event = asyncio.Event()
    clients = [Client() for _ in range(CLIENTS)]
    tasks = [asyncio.create_task(c.run(url, headers, stop_event)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), timeout=60)
    pushed: dict[tuple[int, int], float] = {}
    notified: dict[int, float] = {}
    listener = asyncio.create_task(_listen(notified, project_id))
    results = []
    # Phase 0 warms up the worker, the database connections and the row cache; not reported.
    phases = [(0, 50, WARMUP_EVENTS)] + [
        (i + 1, rate, rate * SECONDS) for i, rate in enumerate(RATES)
    ]
    for phase, rate, count in phases:
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        achieved = await asyncio.to_thread(_produce, project_id, phase, rate, count, pushed)
        elapsed = time.perf_counter() - started
        cpu = {name: round((process_cpu_seconds(pid) - cpu_before[name]) / elapsed, 2)
               for name, pid in pids.items()}  # fmt: skip
        await asyncio.sleep(2.0)  # let the last pushes arrive
        if phase == 0:
            continue
        on_screen, contained, after_notify, missing = [], [], [], 0
        for client in clients:
            screen, carried, dashboard = _latencies(client, phase, pushed, count, notified)
            missing += count - len(screen)
            on_screen += [ms for _, ms in screen]
            contained += carried
            after_notify += dashboard
        per_client_msgs = [
            sum(1 for _, text in c.messages if f"bench~{phase}~" in text) for c in clients
        ]
        results.append({
            "events_per_second": rate,
            "achieved_events_per_second": round(achieved),
            "events": count,
            "samples": len(on_screen),
            "never_reached": missing,
            "p50_ms": round(percentile(on_screen, 0.50), 1),
            "p99_ms": round(percentile(on_screen, 0.99), 1),
            "max_ms": round(max(on_screen), 1),
            "contained": {
                "samples": len(contained),
                "p50_ms": round(percentile(contained, 0.50), 1),
                "p99_ms": round(percentile(contained, 0.99), 1),
                # Of which: from the worker's notification to the page (Daphne's share).
                "after_notification_p50_ms": round(percentile(after_notify, 0.50), 1),
                "after_notification_p99_ms": round(percentile(after_notify, 0.99), 1),
            },
            "messages_per_client_per_second": round(statistics.mean(per_client_msgs) / SECONDS, 1),
            # CPU seconds per second while pushing: how close each process came to a core.
            "cpu_cores_used": cpu,
        })  # fmt: skip
    stop_event.set()
    listener.cancel()
    await asyncio.gather(*tasks, listener, return_exceptions=True)
    return results


def _session_cookie(user) -> str:
    from django.test import Client as DjangoClient

    client = DjangoClient()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _environment() -> dict[str, str]:
    env = bench_env()
    create_database(env["DATABASE_URL"], DATABASE)
    env["DATABASE_URL"] = replace_path(env["DATABASE_URL"], f"/{DATABASE}")
    env["REDIS_URL"] = replace_path(env["REDIS_URL"], f"/{REDIS_DB}")
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL")})
    migrate(env)
    import django

    django.setup()
    from errorsink.ingest.queue import queue_name, redis_client

    redis_client().delete(queue_name())  # leftovers of an interrupted run
    return env


def main() -> dict:
    env = _environment()
    from django.contrib.auth.models import User

    from errorsink.projects.services import project_create

    user = User.objects.create_user(f"bench-live-{uuid.uuid4().hex[:8]}")
    project = project_create(name="bench live latency", owner=user)
    with tempfile.TemporaryDirectory() as logdir:
        stack = Stack(env, Path(logdir))
        try:
            web = stack.web()
            daphne, port = web.proc, web.port
            worker = stack.worker(name="bench")
            headers = {"Cookie": f"sessionid={_session_cookie(user)}",
                       "Origin": f"http://127.0.0.1:{port}"}  # fmt: skip
            url = f"ws://127.0.0.1:{port}/ws/projects/{project.id}/"
            pids = {"daphne": daphne.pid, "worker": worker.pid, "bench_clients": os.getpid()}
            rates = asyncio.run(_measure(url, headers, str(project.id), pids))
        finally:
            stack.stop()
    project.delete()
    user.delete()
    at_1000 = next(r for r in rates if r["events_per_second"] == 1_000)
    result = {
        "benchmark": "live_latency",
        "clients": CLIENTS,
        "seconds_per_rate": SECONDS,
        "rates": rates,
        "target_p99_ms_at_1000": TARGET_P99_MS,
        "target_met": at_1000["p99_ms"] < TARGET_P99_MS,
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
