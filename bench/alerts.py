"""Alert latency: from an error pushed onto the queue to its rule's webhook body arriving at a
real HTTP receiver on loopback, through the real worker (ingest, evaluation, delivery) and beat
(which starts an evaluation every 2 s). 20 firings: 20 rules, each on its own code, each fired
by one error pushed while the stack is otherwise idle. docs/alerts.md allows 10 s.

Run with `make bench` (or `python -m bench.alerts`); prints JSON.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

from bench.common import bench_env, percentile, prepare_database
from devstack.harness import Stack

FIRINGS = 20
LIMIT_SECONDS = 10.0


class _Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # rule name → arrival time
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.arrived.setdefault(body["rule"]["name"], time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _rules(project, url: str) -> list[str]:
    from errorsink.alerts.rules import RuleIn, rule_create

    names = []
    for n in range(FIRINGS):
        rule = rule_create(project=project, data=RuleIn(
            name=f"bench-{n}", channels=[{"type": "webhook", "url": url}],
            condition={"type": "event_count", "threshold": 0, "window_seconds": 60,
                       "code": f"BENCH_{n}"},
        ))  # fmt: skip
        names.append(rule.name)
    return names


def _fire(project_id: str, n: int, receiver: _Receiver) -> float:
    from errorsink.ingest.queue import queue_name, redis_client

    item = {"type": "session_error", "project_id": project_id, "code": f"BENCH_{n}",
            "message": "bench", "session_id": f"bench-{n}"}  # fmt: skip
    pushed = time.time()
    redis_client().lpush(queue_name(), orjson.dumps(item))
    deadline = time.monotonic() + 30
    while f"bench-{n}" not in receiver.arrived:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rule bench-{n} did not fire within 30 s")
        time.sleep(0.005)
    return receiver.arrived[f"bench-{n}"] - pushed


def main() -> dict:
    # The receiver runs on loopback, which errorsink sends to only when allowed.
    os.environ["ERRORSINK_WEBHOOK_ALLOW"] = "127.0.0.1"
    env = bench_env()
    prepare_database(env)
    from errorsink.alerts.models import AlertRule
    from errorsink.projects.models import Project

    AlertRule.objects.all().delete()
    project = Project.objects.create(name="bench alerts")
    receiver = _Receiver()
    _rules(project, receiver.url)
    latencies, phases = [], random.Random(7)
    with tempfile.TemporaryDirectory() as logdir:
        env = {**env, "ERRORSINK_STATE_DIR": str(Path(logdir) / "state")}
        stack = Stack(env, Path(logdir))
        try:
            stack.worker(name="bench")
            stack.beat(ready="beat: Starting...")
            time.sleep(3)  # beat's first ticks
            for n in range(FIRINGS):
                latencies.append(_fire(str(project.id), n, receiver))
                # Each arrival follows a tick: a random pause over one period makes the next
                # push land at any phase of beat's 2 s, as real errors do.
                time.sleep(phases.uniform(0, 2.0))
        finally:
            stack.stop()
    result = {
        "benchmark": "alerts",
        "firings": FIRINGS,
        "push_to_webhook_seconds": {
            "p50": round(statistics.median(latencies), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
            "min": round(min(latencies), 3),
        },
        "limit_seconds": LIMIT_SECONDS,
        "within_limit": all(latency < LIMIT_SECONDS for latency in latencies),
        "evaluation_period_seconds": 2.0,
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
