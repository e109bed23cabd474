"""The front door against the bare parse-and-LPUSH app (bench/bare_app.py) under the same
Daphne, in the same run: single events, batches of 100, Sentry envelopes and OTLP exports of
a voice turn (docs/turns.md).

wrk (Debian's, installed when missing) drives each with 16 connections on 2 threads; a Lua
script gives every request its own event ids, so nothing is deduplicated. The worker is not
running while the door is measured (both sides only queue); afterwards it is started and the
benchmark waits until every accepted event is stored, and says so. Last, single events at full
speed on a project with the default ingest quota (none should be refused) and on one whose
quota is 100 a second (the rest get 429).

Run with `make bench` (or `python -m bench.front_door`); prints JSON.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import bench_env, percentile, prepare_database
from devstack.harness import Stack
from devstack.processes import free_port

SECONDS = int(os.environ.get("BENCH_DOOR_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_DOOR_CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("BENCH_DOOR_ROUNDS", "2"))
BATCH = 100

# wrk's Lua: each thread numbers its requests; BODY holds %s where the unique id goes.
WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
function init(args) thread_id = id end
wrk.method = "POST"
wrk.headers["Content-Type"] = "CONTENT_TYPE"
AUTH_LINE
local template = BODY
function request()
  counter = counter + 1
  local unique = string.format("RUN-%d-%d", thread_id, counter)
  local hex = string.format("%08x%08x", thread_id, counter)
  local trace = string.format("RUN%02x%06x", thread_id, counter)
  local body = template:gsub("UNIQUE", unique):gsub("HEXID", hex):gsub(TRACE_SLOT, trace)
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.errors.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def wrk_ensure() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def _event(project_id: str) -> dict:
    return {"type": "session_error", "code": "AGENT_HANDLER_FAILED", "message": "KeyError",
            "session_id": "bench-door", "build_id": "agent@bench", "event_id": "UNIQUE",
            "project_id": project_id}  # fmt: skip


def _batch_body(project_id: str) -> str:
    items = [{**_event(project_id), "event_id": f"UNIQUE-{n}"} for n in range(BATCH)]
    return json.dumps(items)


def _envelope_body() -> str:
    event = {"event_id": "UNIQUE", "level": "error", "release": "agent@bench",
             "tags": {"session_id": "bench-door"},
             "exception": {"values": [{"type": "KeyError", "value": "'order_id'",
                                       "stacktrace": {"frames": [
                                           {"filename": "agent.py", "function": "lookup_order",
                                            "lineno": 12, "in_app": True}]}}]}}  # fmt: skip
    # No "length": the payload ends at its newline, whatever the length of the id put in.
    return f'{{"event_id": "UNIQUE"}}\n{{"type": "event"}}\n{json.dumps(event)}\n'


# Sixteen bytes in a protobuf body that wrk replaces by a trace id of its own per request.
TRACE_SLOT = b"Q" * 16


def _lua_string(body: str | bytes) -> str:
    """The body as a Lua literal: text in a long bracket, bytes (protobuf) byte by byte."""
    if isinstance(body, str):
        return f"[==[{body}]==]"
    return '"' + "".join(f"\\{byte:03d}" for byte in body) + '"'


def _otlp_protobuf_body() -> bytes:
    """The same export as ``_otlp_body`` as the OTLP exporters send it: protobuf, its trace id
    the slot wrk fills in."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    export = json.loads(_otlp_body())
    for span in export["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # protobuf's JSON: base64
        span["traceId"] = base64.b64encode(TRACE_SLOT).decode()
        for name in ("spanId", "parentSpanId"):
            span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
    return json_format.ParseDict(export, ExportTraceServiceRequest()).SerializeToString()


def _otlp_body() -> str:
    """One Pipecat turn as its exporter sends it, in OTLP's JSON: the conversation span (not a
    turn: ignored), the turn and its STT, LLM and TTS spans. Its trace id is unique per request
    once wrk fills it in (8 hex digits of the run, 16 of the thread and request)."""
    trace, start = "RUN00000000HEXID", time.time_ns() - 10**9

    def span(name: str, span_id: str, parent: str, attributes: dict) -> dict:
        return {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
                "kind": 1, "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**9),
                "attributes": [{"key": key, "value": _any_value(value)}
                               for key, value in attributes.items()]}  # fmt: skip

    turn = "00000000000000b2"
    spans = [
        span("conversation", "00000000000000a1", "", {"conversation.id": "bench-otlp"}),
        span("turn", turn, "00000000000000a1", {
            "turn.number": 2, "conversation.id": "bench-otlp",
            "turn.user_bot_latency_seconds": 1.21, "turn.was_interrupted": False}),
        *[span(stage, f"00000000000000c{n}", turn, {
            "metrics.ttfb": 0.2 + n / 10, "gen_ai.provider.name": "bench",
            "gen_ai.request.model": f"{stage}-model"})
          for n, stage in enumerate(("stt", "llm", "tts"))],
    ]  # fmt: skip
    resource = {"attributes": [
        {"key": "service.name", "value": {"stringValue": "pipecat"}},
        {"key": "service.version", "value": {"stringValue": "agent@bench"}}]}  # fmt: skip
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [
        {"scope": {"name": "pipecat.turn"}, "spans": spans}]}]})  # fmt: skip


def _any_value(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP's JSON writes 64-bit integers as strings
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def scenarios(target: dict) -> list[dict]:
    """(name, events per request, door url/headers/body, bare body) for each kind."""
    project_id = target["project_id"]
    bearer = f"Bearer {target['key']}"
    return [
        {"name": "single", "events": 1, "url": target["events_url"], "auth": bearer,
         "body": json.dumps(_event(project_id)), "content_type": "application/json"},
        {"name": "batch_100", "events": BATCH, "url": target["batch_url"], "auth": bearer,
         "body": _batch_body(project_id), "content_type": "application/json"},
        {"name": "envelope", "events": 1, "url": target["envelope_url"], "auth": None,
         "body": _envelope_body(), "content_type": "application/x-sentry-envelope"},
        # Four turn items a request (the turn and its three stages; the conversation ignored),
        # in protobuf as Pipecat's and LiveKit's exporters send them, and in OTLP's JSON.
        {"name": "otlp_protobuf", "events": 4, "url": target["otlp_url"], "auth": bearer,
         "body": _otlp_protobuf_body(), "content_type": "application/x-protobuf"},
        {"name": "otlp_json", "events": 4, "url": target["otlp_url"], "auth": bearer,
         "body": _otlp_body(), "content_type": "application/json"},
    ]  # fmt: skip


def wrk_run(wrk: str, url: str, scenario: dict, workdir: Path) -> dict:
    run = uuid.uuid4().hex[:8]
    auth = f'wrk.headers["Authorization"] = "{scenario["auth"]}"' if scenario["auth"] else ""
    script = (WRK_SCRIPT.replace("CONTENT_TYPE", scenario["content_type"])
              .replace("AUTH_LINE", auth).replace("TRACE_SLOT", f'"{TRACE_SLOT.decode()}"')
              .replace("BODY", _lua_string(scenario["body"])).replace("RUN", run))  # fmt: skip
    path = workdir / f"{scenario['name']}-{run}.lua"
    path.write_text(script)
    command = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s",
               "-s", str(path), url]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not match:
        raise RuntimeError(f"wrk said nothing usable:\n{out.stdout}\n{out.stderr}")
    requests, non_2xx, p50_us, p99_us, duration_us = map(int, match.groups())
    ok, seconds = requests - non_2xx, duration_us / 1e6
    events = ok * scenario["events"]
    return {"requests": requests, "refused": non_2xx, "requests_per_second": ok / seconds,
            "events_per_second": events / seconds, "p50_ms": p50_us / 1000,
            "p99_ms": p99_us / 1000, "accepted_events": events}  # fmt: skip


def _target(port: int, quota: int | None = 0) -> tuple[dict, list]:
    from django.contrib.auth.models import User

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.services import project_create
    from errorsink.sentry.keys import sentry_key_for

    user = User.objects.create_user(f"bench-door-{uuid.uuid4().hex[:8]}")
    project = project_create(name="bench front door", owner=user)
    project.ingest_quota = quota  # 0 where throughput is measured, not the quota
    project.save()
    key = sentry_key_for(project)
    _, plaintext = api_key_create(project=project, scopes="errors:write")
    base = f"http://127.0.0.1:{port}"
    return {
        "project_id": str(project.id), "key": plaintext,
        "events_url": f"{base}/api/v1/projects/{project.id}/events",
        "batch_url": f"{base}/api/v1/projects/{project.id}/events/batch",
        "envelope_url": f"{base}/api/{key.id}/envelope/?sentry_key={key.public_key}",
        "otlp_url": f"{base}/v1/traces",
    }, [project, user]  # fmt: skip


def _settled_length(client, name: str) -> int:
    """The queue's length once the requests wrk left in flight have landed."""
    length = -1
    while (now := client.llen(name)) != length:
        length = now
        time.sleep(0.5)
    return length


def _wait_stored(project_id: str, expected: int, timeout: float = 300) -> float:
    from errorsink.sessions.models import Event

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        stored = Event.objects.filter(project_id=project_id).count()
        if stored >= expected:
            return stored
        time.sleep(0.5)
    return Event.objects.filter(project_id=project_id).count()


def main() -> dict:
    wrk = wrk_ensure()
    env = bench_env()
    prepare_database(env)
    from errorsink.ingest.queue import queue_name, redis_client

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        stack = Stack(env, workdir / "logs")
        try:
            door = stack.web()
            bare_port = free_port()
            stack.start(["daphne", "--bind", "127.0.0.1", "--port", str(bare_port),
                         "bench.bare_app:application"], name="bare", ready=bare_port)  # fmt: skip
            target, owned = _target(door.port)
            results = _measure(wrk, target, f"http://127.0.0.1:{bare_port}/", workdir)
            answered = sum(r["accepted_events"] for s in results.values() for r in s["door"])
            # wrk counts the answers it saw in time; the queue holds every event accepted.
            accepted = _settled_length(redis_client(), queue_name())
            stack.worker(name="bench-door")
            stored = _wait_stored(target["project_id"], accepted)
            quotas, quota_owned = _quotas(wrk, door.port, workdir)
        finally:
            stack.stop()
    redis_client().delete("bench:bare")
    for model in owned + quota_owned:
        model.delete()
    summary = {**_summary(results, answered, accepted, stored), "quota": quotas}
    print(json.dumps(summary, indent=2))
    return summary


def _measure(wrk: str, target: dict, bare_url: str, workdir: Path) -> dict:
    """Rounds of door then bare for each scenario, alternating which goes first."""
    results = {}
    for scenario in scenarios(target):
        runs = {"door": [], "bare": []}
        for number in range(ROUNDS):
            order = ("door", "bare") if number % 2 == 0 else ("bare", "door")
            for side in order:
                url = scenario["url"] if side == "door" else bare_url
                runs[side].append(wrk_run(wrk, url, scenario, workdir))
        results[scenario["name"]] = runs
    return results


def _quotas(wrk: str, port: int, workdir: Path) -> tuple[dict, list]:
    """Single events at full speed on a project with the default quota (none refused while the
    door stays under it), then on one whose quota is 100 a second (429 past it)."""
    figures, owned = {}, []
    for label, quota in (("default", None), ("override_100", 100)):
        target, models = _target(port, quota)
        owned += models
        single = scenarios(target)[0]
        run = wrk_run(wrk, single["url"], single, workdir)
        figures[label] = {"requests_per_second": round(run["requests"] / SECONDS, 1),
                          "accepted_per_second": round(run["requests_per_second"], 1),
                          "refused": run["refused"]}  # fmt: skip
    return figures, owned


def _median(runs: list[dict], field: str) -> float:
    return round(percentile([run[field] for run in runs], 0.5), 1)


def _summary(results: dict, answered: int, accepted: int, stored: int) -> dict:
    figures = {}
    for name, runs in results.items():
        door, bare = runs["door"], runs["bare"]
        door_rps = _median(door, "requests_per_second")
        bare_rps = _median(bare, "requests_per_second")
        figures[name] = {
            "door_requests_per_second": door_rps, "bare_requests_per_second": bare_rps,
            "ratio": round(door_rps / bare_rps, 3),
            "door_events_per_second": _median(door, "events_per_second"),
            "door_p50_ms": _median(door, "p50_ms"), "door_p99_ms": _median(door, "p99_ms"),
            "bare_p99_ms": _median(bare, "p99_ms"),
            "door_refused": sum(r["refused"] for r in door),
        }  # fmt: skip
    return {"benchmark": "front_door", "connections": CONNECTIONS, "seconds": SECONDS,
            "rounds": ROUNDS, "scenarios": figures, "answered_events": answered,
            "accepted_events": accepted, "stored_events": stored,
            "all_stored": stored == accepted >= answered}  # fmt: skip


if __name__ == "__main__":
    main()
