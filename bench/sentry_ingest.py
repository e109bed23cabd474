"""Sentry envelope ingest over HTTP beside errorsink's own events API, in the same run.

Starts its own Daphne and Celery worker against a bench database and Redis number. The envelope
is a real one: sentry-sdk itself captures an exception (with its frames, context lines and
contexts) through an in-process transport that keeps the bytes, and each request gets its own
event_id and is gzip-compressed beforehand, as the SDK sends it. The baseline posts one
`session_error` item per request to `POST /api/v1/projects/{id}/events` with a Bearer key.

Both run with SENDERS concurrent senders (asyncio + httpx, keep-alive), alternating for ROUNDS
rounds of SECONDS each; a round's rate counts only answered 200/202 requests, and then waits
until the worker has stored every accepted event (the stored rate includes that wait).

Run with `make bench` (or `python -m bench.sentry_ingest`); prints JSON.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import bench_env, create_database, migrate, replace_path
from devstack.harness import Stack

SENDERS = int(os.environ.get("BENCH_SENTRY_SENDERS", "8"))
SECONDS = float(os.environ.get("BENCH_SENTRY_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_SENTRY_ROUNDS", "3"))
DATABASE = "errorsink_bench_sentry"
REDIS_DB = "12"
EVENT_ID = "0" * 32  # replaced per request


def sdk_envelope(dsn: str) -> bytes:
    """One envelope exactly as sentry-sdk serialises it for a caught exception."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    kept: list[bytes] = []

    class Keep(Transport):
        def capture_envelope(self, envelope) -> None:
            kept.append(envelope.serialize())

    sentry_sdk.init(
        dsn=dsn,
        transport=Keep,
        release="agent@bench",
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    sentry_sdk.set_tag("session_id", "bench-session")

    def lookup_order(orders: dict) -> str:
        return orders["order_id"]

    try:
        lookup_order({})
    except KeyError as exc:
        event_id = sentry_sdk.capture_exception(exc)
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
    return kept[0].replace(event_id.encode(), EVENT_ID.encode())


def _bodies(kind: str, template: bytes, count: int, project_id: str) -> list[bytes]:
    if kind == "envelope":
        return [gzip.compress(template.replace(EVENT_ID.encode(), uuid.uuid4().hex.encode()))
                for _ in range(count)]  # fmt: skip
    return [json.dumps({"type": "session_error", "code": "AGENT_HANDLER_FAILED",
                        "message": "KeyError: 'order_id'", "session_id": "bench-session",
                        "project_id": project_id, "build_id": "agent@bench",
                        "event_id": uuid.uuid4().hex}).encode()
            for _ in range(count)]  # fmt: skip


async def _send(url: str, headers: dict, bodies: list[bytes], seconds: float) -> dict:
    import httpx

    answered, refused, latencies = 0, 0, []
    deadline = time.monotonic() + seconds
    queue = iter(bodies)

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal answered, refused
        for body in queue:
            if time.monotonic() >= deadline:
                return
            started = time.monotonic()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.monotonic() - started)
            if response.status_code in (200, 202):
                answered += 1
            else:
                refused += 1

    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(sender(client) for _ in range(SENDERS)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {"accepted": answered, "refused": refused, "seconds": elapsed,
            "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1)}  # fmt: skip


def _wait_stored(project_id: str, expected: int, timeout: float = 120) -> float:
    from errorsink.sessions.models import Event

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Event.objects.filter(project_id=project_id).count() >= expected:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not store {expected} events in {timeout} s")


def _round(kind: str, target: dict, stored_before: int) -> dict:
    bodies = _bodies(kind, target["template"], 20_000, target["project_id"])
    started = time.monotonic()
    sent = asyncio.run(_send(target[f"{kind}_url"], target[f"{kind}_headers"], bodies, SECONDS))
    done = _wait_stored(target["project_id"], stored_before + sent["accepted"])
    return {**sent, "http_events_per_second": round(sent["accepted"] / sent["seconds"], 1),
            "stored_events_per_second": round(sent["accepted"] / (done - started), 1)}  # fmt: skip


def _environment() -> dict[str, str]:
    env = bench_env()
    create_database(env["DATABASE_URL"], DATABASE)
    env["DATABASE_URL"] = replace_path(env["DATABASE_URL"], f"/{DATABASE}")
    env["REDIS_URL"] = replace_path(env["REDIS_URL"], f"/{REDIS_DB}")
    env.update(ERRORSINK_API_RATE_LIMIT="0", ERRORSINK_INGEST_QUOTA="0")
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL")})
    migrate(env)
    import django

    django.setup()
    from errorsink.ingest.queue import queue_name, redis_client

    redis_client().delete(queue_name())
    return env


def _target(port: int) -> tuple[dict, object]:
    from django.contrib.auth.models import User

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.services import project_create
    from errorsink.sentry.keys import sentry_dsn, sentry_key_for

    user = User.objects.create_user(f"bench-sentry-{uuid.uuid4().hex[:8]}")
    project = project_create(name="bench sentry ingest", owner=user)
    key = sentry_key_for(project)
    _, plaintext = api_key_create(project=project, scopes="errors:write")
    base = f"http://127.0.0.1:{port}"
    target = {
        "project_id": str(project.id),
        "template": sdk_envelope(sentry_dsn(key, base)),
        "envelope_url": f"{base}/api/{key.id}/envelope/",
        "envelope_headers": {"X-Sentry-Auth": f"Sentry sentry_key={key.public_key}, "
                             "sentry_version=7, sentry_client=sentry.python/bench",
                             "Content-Type": "application/x-sentry-envelope",
                             "Content-Encoding": "gzip"},
        "events_url": f"{base}/api/v1/projects/{project.id}/events",
        "events_headers": {"Authorization": f"Bearer {plaintext}",
                           "Content-Type": "application/json"},
    }  # fmt: skip
    return target, (project, user)


def main() -> dict:
    env = _environment()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    with tempfile.TemporaryDirectory() as logdir:
        stack = Stack(env, Path(logdir))
        try:
            port = stack.web().port
            stack.worker(name="bench")
            target, owned = _target(port)
            rounds: dict[str, list[dict]] = {"envelope": [], "events": []}
            stored = 0
            for _ in range(ROUNDS):
                for kind in ("events", "envelope"):
                    result = _round(kind, target, stored)
                    stored += result["accepted"]
                    rounds[kind].append(result)
        finally:
            stack.stop()
    for model in owned:
        model.delete()
    result = _summary(rounds, len(target["template"]))
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    return result


def _summary(rounds: dict[str, list[dict]], envelope_bytes: int) -> dict:
    def median(kind: str, field: str) -> float:
        return statistics.median(r[field] for r in rounds[kind])

    envelope, events = (median(k, "http_events_per_second") for k in ("envelope", "events"))
    return {
        "benchmark": "sentry_ingest",
        "senders": SENDERS,
        "seconds_per_round": SECONDS,
        "rounds": rounds,
        "sdk_envelope_bytes": envelope_bytes,
        "envelope_http_events_per_second_median": envelope,
        "events_api_http_events_per_second_median": events,
        "envelope_to_events_api_ratio": round(envelope / events, 2),
        "envelope_stored_per_second_median": median("envelope", "stored_events_per_second"),
        "events_api_stored_per_second_median": median("events", "stored_events_per_second"),
        "envelope_p95_ms_median": median("envelope", "p95_ms"),
        "events_api_p95_ms_median": median("events", "p95_ms"),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
