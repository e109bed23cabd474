"""Load: 200 open dashboards while thousands of events a second arrive, the API read beside.

For each rate (2,000 and 5,000 events/s by default) it opens 200 websocket clients on a fresh
project exactly as the browser does (bench/live_latency.py's clients and producer), then:
- quiet: single events one second apart, each timed from LPUSH to every one of the 200 pages;
- load: the rate for three minutes while a thread calls the API's last-20 errors and issues
  list ten times a second; push-to-page p50/p99 per minute (an event counts in the minute it
  was pushed), so a stack that falls behind shows it as a rising figure.

The stack is `make run`'s: Daphne, a worker and beat (so the rollups, the alert evaluations and
the redraws they cause share the machine with the rows). The pages are read by a small client of
its own (PageSocket below), not the `websockets` library, which cost the generator most of the
CPU it took from the machine under test.

Beside the figures: CPU cores used by Daphne, the worker (with its children), beat, PostgreSQL
and Redis (when they run here), and this process
(the load generator and the 200 clients: a saturated generator would make the stack look
slow), Daphne's RSS at the start and the end, what Daphne's live hub counted meanwhile
(pushes, renders, database queries and sends, from its `live stats` log lines), and the share
of the machine's CPU time the host gave to other guests in each minute (on a virtual machine
with busy neighbours every stage slows at once; this tells such a minute apart).

Run with `make bench` (or `python -m bench.load`); prints JSON. BENCH_LOAD_RATES,
BENCH_LOAD_SECONDS and BENCH_LOAD_CLIENTS change the shape (e.g. a 30-second smoke run).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import re
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from itertools import pairwise
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import bench.live_latency as live
from bench.common import percentile
from bench.cpu import cpu_snapshot, cpu_used, machine_ticks, server_pids, stolen_share
from devstack.harness import Stack
from devstack.processes import rss_mb

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "200"))
RATES = tuple(int(r) for r in os.environ.get("BENCH_LOAD_RATES", "2000,5000").split(","))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "180"))
BUCKET_SECONDS = 60
QUIET_EVENTS = 10
API_CALLS_PER_SECOND = 10
WARMUP_PHASE, QUIET_PHASE, LOAD_PHASE = 0, 1, 2
GENERATOR = {"bench": "load_generator"}
# Two literal-led patterns instead of live.ROW's lazy `.*?` across each row: at 5,000 events/s
# that one regex took most of a core of the load generator and made its pages look late.
ROW_IDS = re.compile(rb'<tr id="event-(\d+)"')
TOKENS = re.compile(rb"bench~(\d+)~(\d+)~")
ROW = re.compile(live.ROW.pattern.encode(), re.S)
STATS = re.compile(r"live stats ((?:\w+=\d+ ?)+)")


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
    whole messages at 5,000 events/s would hold gigabytes."""

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
        where = urlsplit(url)
        page = await PageSocket.open(self, where.hostname, where.port, _handshake(where, headers))
        try:
            await asyncio.wait_for(asyncio.shield(page.first_message), 30)
            self.ready.set()
            stopped = asyncio.create_task(stop_event.wait())
            await asyncio.wait({stopped, page.closed}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        finally:
            page.close()

    def take(self, received: float, data: bytes) -> None:
        rows = _row_tokens(data)
        compact = "".join(f'<tr id="event-{pk.decode()}" bench~{p.decode()}~'
                          f'{s.decode()}~' for pk, p, s in rows)  # fmt: skip
        self.messages.append((received, compact))


class PageSocket:
    """One page's websocket, read as bytes and framed here, each message timed by the kernel.

    The `websockets` library spent about 0.45 of a core parsing 200 pages' frames at
    2,000 events/s on this 2-core machine. And a page's arrival time, taken when its turn in
    this one event loop came, made the 200th page of a push look 20 ms (p99 70 ms) later than
    the first, a delay of the load generator's, not of the server's: 200 browsers read in
    parallel. So each read asks for the kernel's receive time of its bytes (SO_TIMESTAMPNS), and
    reading costs a slice and a regex. The server's frames are unmasked and uncompressed (no
    extension is offered); pings are answered, as a browser would.
    """

    def __init__(self, client: CompactClient, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.client, self.sock, self.loop = client, sock, loop
        self.first_message: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []

    @classmethod
    async def open(cls, client: CompactClient, host: str, port: int, handshake: bytes):
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, handshake)
        except BaseException:
            sock.close()
            raise
        page = cls(client, sock)
        loop.add_reader(sock.fileno(), page._readable)
        return page

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        with contextlib.suppress(OSError):
            self.sock.send(_masked(0x88, (1000).to_bytes(2, "big")))
        self._lost(None)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 18, 64)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        self._received(data, _kernel_time(ancillary))

    def _lost(self, exc: Exception | None) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        failure = exc or ConnectionError("closed before the first message")
        if not self.first_message.done():
            self.first_message.set_exception(failure)
        if not self.closed.done():
            self.closed.set_result(None)

    def _received(self, data: bytes, received: float) -> None:
        self.buffer += data
        if not self.upgraded and not self._upgrade():
            return
        while self.sock.fileno() >= 0 and (frame := self._next_frame()) is not None:
            self._on_frame(*frame, received)

    def _upgrade(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
        if b" 101 " not in status:
            self._lost(ConnectionError(status.decode(errors="replace")))
            return False
        del self.buffer[: end + 4]
        self.upgraded = True
        return True

    def _next_frame(self) -> tuple[int, bool, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        length, start = buffer[1] & 0x7F, 2
        if length >= 126:
            start = 4 if length == 126 else 10
            if len(buffer) < start:
                return None
            length = int.from_bytes(buffer[2:start], "big")
        if len(buffer) < start + length:
            return None
        opcode, final = buffer[0] & 0x0F, bool(buffer[0] & 0x80)
        payload = bytes(buffer[start : start + length])
        del buffer[: start + length]
        return opcode, final, payload

    def _on_frame(self, opcode: int, final: bool, payload: bytes, received: float) -> None:
        if opcode == 0x9:  # ping
            try:
                self.sock.send(_masked(0x8A, payload))
            except OSError as exc:  # the server hung up meanwhile
                self._lost(exc)
        elif opcode == 0x8:  # close
            self.close()
        elif opcode in (0x0, 0x1, 0x2):
            self.fragments.append(payload)
            if final:
                message, self.fragments = b"".join(self.fragments), []
                if not self.first_message.done():
                    self.first_message.set_result(None)  # the whole view, not a push
                else:
                    self.client.take(received, message)


# Linux's: the socket module does not name them. A read's ancillary data then holds the time its
# first bytes reached the socket, as a struct timespec of the wall clock.
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")


def _kernel_time(ancillary: list) -> float:
    """When the kernel received a read's bytes, on time.perf_counter()'s clock (the clock the
    pushes are timed on); now, where the kernel gave no time."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack(data[: _TIMESPEC.size])
            return seconds + nanoseconds / 1e9 - (time.time() - time.perf_counter())
    return time.perf_counter()


def _handshake(where: SplitResult, headers: dict) -> bytes:
    lines = [f"GET {where.path} HTTP/1.1", f"Host: {where.netloc}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
             *(f"{name}: {value}" for name, value in headers.items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _masked(first_byte: int, payload: bytes) -> bytes:
    """A client frame: clients must mask; a zero key leaves the (short) payload as it is."""
    return bytes([first_byte, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def _row_tokens(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(event id, phase, seq) of each row, as live.ROW finds them (one token per row)."""
    ids, tokens = ROW_IDS.findall(data), TOKENS.findall(data)
    if len(ids) != len(tokens):
        return ROW.findall(data)
    return [(pk, phase, seq) for pk, (phase, seq) in zip(ids, tokens, strict=True)]


class Run:
    """One rate's clients, producer and probes against one project."""

    def __init__(self, stack: Stack, web, pids: dict, url: str, headers: dict,
                 project_id: str, probe: ApiProbe) -> None:  # fmt: skip
        self.stack, self.web, self.pids = stack, web, pids
        self.url, self.headers, self.project_id, self.probe = url, headers, project_id, probe
        self.clients = [CompactClient() for _ in range(CLIENTS)]
        self.pushed: dict[tuple[int, int], float] = {}
        self.notified: dict[int, float] = {}  # event id: when its notification was published

    async def measure(self, rate: int) -> dict:
        CompactClient.connect_retries = 0
        stop_event = asyncio.Event()
        tasks = [asyncio.create_task(c.run(self.url, self.headers, stop_event))
                 for c in self.clients]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in self.clients)), 120)
        listener = asyncio.create_task(live._listen(self.notified, self.project_id))
        await asyncio.to_thread(self._produce, WARMUP_PHASE, 50, live.WARMUP_EVENTS)
        await asyncio.sleep(2)
        quiet = await self._quiet()
        result = {"quiet": quiet, **await self._load(rate)}
        stop_event.set()
        listener.cancel()
        await asyncio.gather(*tasks, listener, return_exceptions=True)
        return result

    def _produce(self, phase: int, rate: int, count: int, first: int = 0) -> float:
        pushed: dict = {}
        achieved = live._produce(self.project_id, phase, rate, count, pushed)
        self.pushed.update({(p, seq + first): at for (p, seq), at in pushed.items()})
        return achieved

    async def _quiet(self) -> dict:
        """Single events one second apart: LPUSH to each of the pages, every pair counted."""
        from errorsink.ingest.queue import queue_name, redis_client

        client, queue = redis_client(), queue_name()
        for n in range(QUIET_EVENTS):
            item = live._item(self.project_id, QUIET_PHASE, n)
            self.pushed[(QUIET_PHASE, n)] = time.perf_counter()
            await asyncio.to_thread(client.lpush, queue, item)
            await asyncio.sleep(1.0)
        latencies, missing = [], 0
        for page in self.clients:
            screen, _, _ = live._latencies(page, QUIET_PHASE, self.pushed, QUIET_EVENTS, {})
            missing += QUIET_EVENTS - len(screen)
            latencies += [ms for _, ms in screen]
        return {"events": QUIET_EVENTS, "pages": len(self.clients), "never_reached": missing,
                "p50_ms": round(percentile(latencies, 0.5), 1),
                "p99_ms": round(percentile(latencies, 0.99), 1),
                "max_ms": round(max(latencies), 1)}  # fmt: skip

    async def _load(self, rate: int) -> dict:
        thread = threading.Thread(target=self.probe.run, daemon=True)
        stats_before = self._hub_stats()
        cpu_before = cpu_snapshot(self.pids)
        thread.start()
        started = time.perf_counter()
        count = rate * SECONDS
        readings = [machine_ticks()]
        sampler = asyncio.create_task(_each_minute_but_the_last(readings))
        achieved = await asyncio.to_thread(self._produce, LOAD_PHASE, rate, count)
        elapsed = time.perf_counter() - started
        sampler.cancel()
        readings.append(machine_ticks())
        # "bench" is this process alone: the generator, its 200 clients and the API probe.
        cpu = cpu_used(cpu_before, cpu_snapshot(self.pids), (*self.pids, "bench"))
        self.probe.stop_flag.set()
        await asyncio.to_thread(thread.join)
        await asyncio.sleep(2.5)  # the last pushes, and a stats line after them
        return {
            "events_per_second": rate,
            "achieved_events_per_second": round(achieved),
            **self._per_minute(count, rate),
            "hub": self._per_push(stats_before, self._hub_stats()),
            "dashboard_connect_retries": CompactClient.connect_retries,
            "api_calls": len(self.probe.durations),
            "api_failures": self.probe.failures,
            "api_p95_ms": round(percentile(self.probe.durations, 0.95), 1),
            # The host's share of the machine's CPU time, per minute: a slow minute on a busy
            # host is the host's, not errorsink's.
            "host_steal_per_minute": [stolen_share(a, b) for a, b in pairwise(readings)],
            # CPU seconds per second of the load: how close each process came to a core.
            "cpu_cores_used": {
                GENERATOR.get(name, name): round(seconds / elapsed, 2)
                for name, seconds in cpu.items()
            },  # fmt: skip
        }

    def _per_minute(self, count: int, rate: int) -> dict:
        buckets: dict[int, list[float]] = {}
        missing, after_notification = 0, []
        # Every event is timed on 200 pages: 180 million pairs at 5,000/s for three minutes.
        # A sample of about 50,000 events a page gives the same percentiles in seconds.
        stride = max(1, count // 50_000)
        for page in self.clients:
            screen, _, after = live._latencies(page, LOAD_PHASE, self.pushed, count,
                                               self.notified, stride)  # fmt: skip
            missing += len(range(0, count, stride)) - len(screen)
            after_notification += after
            for seq, ms in screen:
                buckets.setdefault(seq // (rate * BUCKET_SECONDS), []).append(ms)
        minutes = [{"minute": minute + 1, "samples": len(values),
                    "p50_ms": round(percentile(values, 0.5), 1),
                    "p99_ms": round(percentile(values, 0.99), 1)}
                   for minute, values in sorted(buckets.items())]  # fmt: skip
        # Of events carried in a push themselves: from the worker's notification to the page
        # (the share of Daphne, the network and the clients).
        after = {"p50_ms": round(percentile(after_notification, 0.5), 1),
                 "p99_ms": round(percentile(after_notification, 0.99), 1)}  # fmt: skip
        # And before it: from LPUSH to the worker's notification (the worker's share).
        before = self._to_notification(count)
        return {"per_minute": minutes, "never_reached": missing,
                "to_notification": before, "after_notification": after}  # fmt: skip

    def _to_notification(self, count: int) -> dict:
        carried = {}
        for _, text in self.clients[0].messages:
            for pk, phase, seq in live.ROW.findall(text):
                if int(phase) == LOAD_PHASE and int(pk) in self.notified:
                    carried[int(pk)] = int(seq)
        times = [(self.notified[pk] - self.pushed[(LOAD_PHASE, seq)]) * 1000
                 for pk, seq in carried.items() if seq < count]  # fmt: skip
        if not times:
            return {}
        return {"p50_ms": round(percentile(times, 0.5), 1),
                "p99_ms": round(percentile(times, 0.99), 1)}  # fmt: skip

    def _hub_stats(self) -> dict[str, int]:
        """The newest cumulative counters Daphne's live hub logged (empty before any)."""
        found = STATS.findall(self.stack.log_text(self.web.proc))
        if not found:
            return {}
        return {k: int(v) for k, v in (pair.split("=") for pair in found[-1].split())}

    @staticmethod
    def _per_push(before: dict, after: dict) -> dict:
        if not after:
            return {"counted": False}
        delta = {key: after[key] - before.get(key, 0) for key in after if key != "pages"}
        pushes = max(1, delta.get("pushes", 0))
        return {**delta, "queries_per_push": round(delta.get("queries", 0) / pushes, 2),
                "renders_per_push": round(delta.get("renders", 0) / pushes, 2)}  # fmt: skip


def main() -> dict:
    live.CLIENTS = CLIENTS
    logging_quiet()
    env = live._environment()
    from django.contrib.auth.models import User

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.services import project_create

    user = User.objects.create_user(f"bench-load-{uuid.uuid4().hex[:8]}")
    # A project per rate: a page's first message is its project's newest rows, which must not
    # be the previous rate's (their tokens would read as arrivals before the push).
    projects = [project_create(name=f"bench load {rate}", owner=user) for rate in RATES]
    keys = [api_key_create(project=project, scopes="errors:read")[1] for project in projects]
    env = {**env, "ERRORSINK_API_RATE_LIMIT": "0", "ERRORSINK_LIVE_STATS_SECONDS": "1"}
    # Kept after the run: a failure under load is read in the web and worker logs.
    logdir = Path(tempfile.mkdtemp(prefix="errorsink-bench-load-"))
    print(f"logs in {logdir}", file=sys.stderr)
    stack = Stack(env, logdir)
    try:
        web = stack.web()
        worker = stack.worker(name="bench")
        # Beat as `make run` has it: the rollups, alert evaluations and their notices to the
        # pages (quality panel, banner) ride the same CPU as the rows.
        beat = stack.beat()
        pids = {"daphne": web.proc.pid, "worker": worker.pid, "beat": beat.pid, **server_pids()}
        headers = {"Cookie": f"sessionid={live._session_cookie(user)}",
                   "Origin": f"http://127.0.0.1:{web.port}"}  # fmt: skip
        daphne_rss_start = rss_mb(web.proc.pid)
        loads = []
        for rate, project, key in zip(RATES, projects, keys, strict=True):
            url = f"ws://127.0.0.1:{web.port}/ws/projects/{project.id}/"
            probe = ApiProbe(f"http://127.0.0.1:{web.port}", str(project.id), key)
            run = Run(stack, web, pids, url, headers, str(project.id), probe)
            loads.append(asyncio.run(run.measure(rate)))
        daphne_rss_end = rss_mb(web.proc.pid)
    finally:
        stack.stop()
    for project in projects:
        project.delete()
    user.delete()
    _vacuum()
    result = {"benchmark": "load", "dashboards": CLIENTS, "seconds": SECONDS,
              "loads": loads, "daphne_rss_mb": {"start": daphne_rss_start, "end": daphne_rss_end},
              "cpus": os.cpu_count()}  # fmt: skip
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


async def _each_minute_but_the_last(readings: list) -> None:
    """The machine's CPU ticks at each minute's end but the last (the caller reads that one)."""
    for _ in range(math.ceil(SECONDS / BUCKET_SECONDS) - 1):
        await asyncio.sleep(BUCKET_SECONDS)
        readings.append(machine_ticks())


def _vacuum() -> None:
    """The deleted projects' rows, vacuumed now rather than by autovacuum during the next run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE errorsink_event")


def logging_quiet() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
