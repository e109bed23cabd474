"""Load: 200 open dashboards plus ingest at 2,000 events/s for 60 s, with API reads beside.

Reuses the live-latency benchmark's clients and producer (bench/live_latency.py) with 200
websocket clients and one 60-second phase at 2,000 events/s, while a thread calls the API's
last-20 errors and issues list ten times a second. Reports live p99 (push to page), API p95,
and the RSS of every process before the load, at its end, and after a second identical load
(growth from the first to the second is what a leak would show).

Run with `make bench` (or `python -m bench.load`); prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import bench.live_latency as live
from bench.common import percentile
from devstack.harness import Stack
from devstack.processes import rss_mb

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "200"))
RATE = int(os.environ.get("BENCH_LOAD_RATE", "2000"))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
API_CALLS_PER_SECOND = 10


class ApiProbe:
    """Calls the API at a steady pace from a thread; keeps each call's duration."""

    def __init__(self, base: str, project_id: str, key: str) -> None:
        self.urls = [f"{base}/api/v1/projects/{project_id}/session-errors",
                     f"{base}/api/v1/projects/{project_id}/issues"]  # fmt: skip
        self.headers = {"Authorization": f"Bearer {key}"}
        self.durations: list[float] = []
        self.failures = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stop_flag.is_set():
                started = time.perf_counter()
                response = client.get(self.urls[n % 2], headers=self.headers)
                self.durations.append((time.perf_counter() - started) * 1000)
                self.failures += response.status_code != 200
                n += 1
                time.sleep(max(0.0, 1 / API_CALLS_PER_SECOND - (time.perf_counter() - started)))


class CompactClient(live.Client):
    """A live-latency client that keeps only each message's row tokens: 200 clients keeping
    whole messages at 2,000 events/s would hold gigabytes."""

    connect_retries = 0  # over every client of a load

    async def run(self, url: str, headers: dict, stop_event: asyncio.Event) -> None:
        # 200 pages connecting at once can outwait Daphne's 5 s handshake limit while it is
        # busy; a page's script then reconnects, and so does this client.
        for attempt in range(10):
            try:
                await self._listen(url, headers, stop_event)
                return
            except Exception:  # refused, closed or timed out: as a page, try again
                if self.ready.is_set() or attempt == 9:
                    raise
                CompactClient.connect_retries += 1
                await asyncio.sleep(1 + attempt)

    async def _listen(self, url: str, headers: dict, stop_event: asyncio.Event) -> None:
        import websockets

        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            await ws.recv()
            self.ready.set()
            while not stop_event.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=0.2)
                except TimeoutError:
                    continue
                rows = live.ROW.findall(text)
                compact = "".join(f'<tr id="event-{pk}" bench~{p}~{s}~' for pk, p, s in rows)
                self.messages.append((time.perf_counter(), compact))


def _one_load(url: str, headers: dict, project_id: str, pids: dict, probe: ApiProbe) -> dict:
    probe.durations.clear()
    CompactClient.connect_retries = 0
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    rates = asyncio.run(live._measure(url, headers, project_id, pids))
    probe.stop_flag.set()
    thread.join()
    probe.stop_flag.clear()
    result = rates[-1]
    return {
        "events_per_second": result["achieved_events_per_second"],
        "live_p50_ms": result["p50_ms"],
        "live_p99_ms": result["p99_ms"],
        "live_never_reached": result["never_reached"],
        "dashboard_connect_retries": CompactClient.connect_retries,
        "api_calls": len(probe.durations),
        "api_failures": probe.failures,
        "api_p95_ms": round(percentile(probe.durations, 0.95), 1),
        "cpu_cores_used": result["cpu_cores_used"],
        "rss_mb_after": {name: rss_mb(pid) for name, pid in pids.items()},
    }


def main() -> dict:
    live.CLIENTS, live.RATES, live.SECONDS = CLIENTS, (RATE,), SECONDS
    live.Client = CompactClient
    logging_quiet()
    env = live._environment()
    from django.contrib.auth.models import User

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.services import project_create

    user = User.objects.create_user(f"bench-load-{uuid.uuid4().hex[:8]}")
    # A project per load: a page's first message is its project's newest rows, which must not
    # be the previous load's (their tokens would read as arrivals before the push).
    projects = [project_create(name=f"bench load {n}", owner=user) for n in (1, 2)]
    keys = [api_key_create(project=project, scopes="errors:read")[1] for project in projects]
    env = {**env, "ERRORSINK_API_RATE_LIMIT": "0"}
    # Kept after the run: a failure under load is read in the web and worker logs.
    logdir = Path(tempfile.mkdtemp(prefix="errorsink-bench-load-"))
    print(f"logs in {logdir}", file=sys.stderr)
    stack = Stack(env, logdir)
    try:
        web = stack.web()
        daphne, port = web.proc, web.port
        worker = stack.worker(name="bench")
        pids = {"daphne": daphne.pid, "worker": worker.pid, "bench_clients": os.getpid()}
        headers = {"Cookie": f"sessionid={live._session_cookie(user)}",
                   "Origin": f"http://127.0.0.1:{port}"}  # fmt: skip
        rss_before = {name: rss_mb(pid) for name, pid in pids.items()}
        loads = []
        for project, key in zip(projects, keys, strict=True):
            url = f"ws://127.0.0.1:{port}/ws/projects/{project.id}/"
            probe = ApiProbe(f"http://127.0.0.1:{port}", str(project.id), key)
            loads.append(_one_load(url, headers, str(project.id), pids, probe))
        first, second = loads
    finally:
        stack.stop()
    for project in projects:
        project.delete()
    user.delete()
    result = {"benchmark": "load", "dashboards": CLIENTS, "target_events_per_second": RATE,
              "seconds": SECONDS, "rss_mb_before": rss_before, "first": first, "second": second,
              "cpus": os.cpu_count()}  # fmt: skip
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


def logging_quiet() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
