"""Quality rollups (docs/quality.md) under load, in three parts, each beside a baseline measured
in the same run:

- `cost`: CPU seconds (user + system, of every process involved: PostgreSQL's server processes,
  Redis, the worker, this process) to ingest mixed items through the real queue and worker,
  then to bring the rollups up to date over them (`rollups_update` until the watermark covers
  them); both per 100,000 events, and their ratio.
- `lag`: a real worker (the ingest consumer) and beat (rollups every 2 s) while mixed items are
  pushed at 1,000 a second: how long after an event is seen committed the rollups' watermark
  covers it (and after its received_at).
- `scale`: `--events` events (10 million by default) over 30 days written straight into
  PostgreSQL, rows as ingest writes them (checked against the real normaliser), spread over one
  big project and small ones; the rollups computed over them; then the quality API, the project
  page and the projects list over real HTTP (Daphne), against a project of 10,000 events in the
  same database, and the quality reads' own time from EXPLAIN ANALYZE.

Run with `make bench` (or `python -m bench.quality [--events N] [--parts cost,lag,scale]`);
progress goes to stderr, the JSON to stdout. It has its own database (dropped at the end
unless `--keep`) and Redis number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench.common import bench_env, migrate, replace_path, start_worker
from bench.items import mixed_items
from devstack.processes import beat_command, free_port, start, stop, web_command

DATABASE = "errorsink_bench_quality"
REDIS_DB = "12"
PARTS = ("cost", "lag", "scale")
COST_EVENTS = 100_000
LAG_RATE = 1_000
LAG_SECONDS = 45
LAG_SAMPLE_SECONDS = 0.1
LAG_DRAIN_SECONDS = 120
SCALE_EVENTS = 10_000_000
REQUESTS = 40
WARMUP_REQUESTS = 3
WINDOWS = ("1h", "24h", "7d", "30d")
PAGE_WINDOWS = ("24h", "30d")
BASELINE_EVENTS = 10_000
# Shares of the scale events of the small projects besides the big one and the baseline.
SMALL_SHARES = (0.01, 0.005, 0.002)
EVENTS_PER_SESSION = 20  # on average: 12 to 28
SESSIONS_PER_CHUNK = 20_000
BUILDS = 6  # released at even intervals over the 30 days, each rolled out over 12 hours
ROLLOUT_SECONDS = 12 * 3600
# Sessions with quality trouble: most of their events are warnings (30% of all events).
TROUBLED_PERCENT = 45
STAGED = "bench:quality:staged"
TICK = 0.01
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _progress(message: str) -> None:
    print(f"[bench.quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------------------------------
# CPU of processes, from /proc (Linux), as the other benchmarks read it


def _stat(pid: int) -> tuple[int, float, float]:
    """A process's parent, its own CPU seconds (user + system) and those of its reaped
    children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return int(fields[1]), own, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def _process_table() -> dict[int, tuple[int, float, float]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while the table was read
    return table


def _tree_cpu(table: dict, root: int) -> float:
    """CPU seconds of a process and its descendants, living or gone: a PostgreSQL backend that
    exits moves its time into the postmaster's reaped-children time."""
    children = defaultdict(list)
    for pid, (parent, _, _) in table.items():
        children[parent].append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1] + table[pid][2]
            todo += children[pid]
    return total


def cpu_snapshot(trees: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, and of this process alone ("bench": its
    reaped children are the worker and the like, counted under their own names)."""
    table = _process_table()
    snapshot = {name: _tree_cpu(table, pid) for name, pid in trees.items()}
    snapshot["bench"] = table[os.getpid()][1]
    return snapshot


def cpu_used(before: dict, after: dict, names: tuple[str, ...]) -> dict[str, float]:
    used = {name: round(after[name] - before[name], 2) for name in names if name in before}
    used["total"] = round(sum(used.values()), 2)
    return used


def _local_pid(pid: int, program: str) -> int | None:
    """The pid if that process runs here and is `program` (a remote server's is not ours)."""
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith(program) else None
    except FileNotFoundError:
        return None


def server_pids() -> dict[str, int]:
    """PostgreSQL's postmaster and the Redis server, where they run on this machine."""
    from django.db import connection

    from errorsink.connections import redis_client

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = _local_pid(cursor.fetchone()[0], "postgres")
    pids = {}
    if backend is not None:
        pids["postgres"] = _stat(backend)[0]
    redis_pid = _local_pid(int(redis_client().info("server")["process_id"]), "redis")
    if redis_pid is not None:
        pids["redis"] = redis_pid
    if "postgres" not in pids:
        _progress("PostgreSQL is not on this machine: its CPU is not counted")
    return pids


# ---------------------------------------------------------------------------------------------
# The database and the tables between parts


def _environment() -> dict[str, str]:
    env = bench_env()
    _database_recreate(env["DATABASE_URL"])
    env["DATABASE_URL"] = replace_path(env["DATABASE_URL"], f"/{DATABASE}")
    env["REDIS_URL"] = replace_path(env["REDIS_URL"], f"/{REDIS_DB}")
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL")})
    migrate(env)
    import django

    django.setup()
    from errorsink.connections import redis_client

    redis_client().flushdb()
    return env


def _database_recreate(server_url: str) -> None:
    _database_drop(server_url)
    import psycopg

    with psycopg.connect(replace_path(server_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _database_drop(server_url: str) -> None:
    import psycopg

    with psycopg.connect(replace_path(server_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _tables_empty() -> None:
    """Events, sessions, the rollups and their state, between parts."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE errorsink_event, errorsink_session, errorsink_rollup_session, "
            "errorsink_rollup_code, errorsink_rollup_metric, errorsink_rollup_state "
            "RESTART IDENTITY"
        )


def _vacuum_analyze(tables: list[str]) -> float:
    """What autovacuum would do after a bulk load, done now so it does not land in a
    measurement; returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
    return round(time.perf_counter() - started, 1)


def _max_event_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM errorsink_event")
        return cursor.fetchone()[0]


def roll_up_everything() -> int:
    """Runs of rollups_update until the watermark covers every stored event; returns the runs."""
    from errorsink.quality.rollups import rollups_update, rollups_watermark

    target, runs = _max_event_id(), 0
    while rollups_watermark() < target:
        rollups_update()
        runs += 1
        if runs > 10_000:
            raise RuntimeError("the rollups do not reach the last event")
    return runs


# ---------------------------------------------------------------------------------------------
# Part 1: what the rollups cost beside ingest


def measure_cost(env: dict, logdir: Path, project_id: str, count: int) -> dict:
    from errorsink.connections import redis_client

    _tables_empty()
    load_before = _load()
    # Recent, as live traffic is: these events also get the rollups' minute rows.
    start = datetime.now(UTC) - timedelta(hours=1)
    items = mixed_items(count, project_id, start=start, step=timedelta(hours=1) / count)
    client = redis_client()
    for offset in range(0, count, 1_000):
        client.lpush(STAGED, *items[offset : offset + 1_000])
    servers = server_pids()
    ingest, ingest_seconds = _ingest_staged(env, logdir, servers)
    if _max_event_id() < count:
        raise RuntimeError(f"only {_max_event_id()} of {count} items were stored")
    vacuum_seconds = _vacuum_analyze(["errorsink_event", "errorsink_session"])
    before = cpu_snapshot(servers)
    started = time.perf_counter()
    runs = roll_up_everything()
    rollup_seconds = time.perf_counter() - started
    rollups = cpu_used(before, cpu_snapshot(servers), ("postgres", "redis", "bench"))
    per_100k = 100_000 / count
    return {
        "events": count,
        "ingest": {"seconds": round(ingest_seconds, 2),
                   "cpu_seconds": ingest,
                   "cpu_seconds_per_100k": round(ingest["total"] * per_100k, 2)},
        "rollups": {"seconds": round(rollup_seconds, 2), "runs": runs,
                    "cpu_seconds": rollups,
                    "cpu_seconds_per_100k": round(rollups["total"] * per_100k, 2)},
        "ratio_rollups_to_ingest_cpu": round(rollups["total"] / ingest["total"], 3),
        "vacuum_analyze_between_seconds": vacuum_seconds,
        "load_average_1m": {"before": load_before, "after": _load()},
    }  # fmt: skip


def _ingest_staged(env: dict, logdir: Path, servers: dict) -> tuple[dict, float]:
    """Start a worker, then hand it the staged items in one RENAME, so neither the pushing nor
    the worker's start-up is in the figures; CPU until every batch is committed."""
    from errorsink.connections import redis_client
    from errorsink.ingest.queue import processing_prefix, queue_name

    client = redis_client()
    worker = start_worker(env, logdir / "worker-cost.log")
    try:
        before = cpu_snapshot({**servers, "worker": worker.pid})
        started = time.perf_counter()
        client.rename(STAGED, queue_name())
        # A processing list is only cleared after its batch committed.
        while client.llen(queue_name()) or any(client.scan_iter(processing_prefix() + "*")):
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        after = cpu_snapshot({**servers, "worker": worker.pid})
    finally:
        stop(worker)
    return cpu_used(before, after, ("postgres", "redis", "worker")), seconds


# ---------------------------------------------------------------------------------------------
# Part 2: how far the rollups trail ingest at 1,000 events a second


def measure_lag(env: dict, logdir: Path, project_id: str, seconds: int) -> dict:
    _tables_empty()
    load_before = _load()
    count = LAG_RATE * seconds
    items = mixed_items(count, project_id, start=datetime.now(UTC) + timedelta(seconds=2),
                        step=timedelta(seconds=1) / LAG_RATE, seed=11)  # fmt: skip
    worker = start_worker(env, logdir / "worker-lag.log")
    beat = None
    try:
        beat_env = {**env, "ERRORSINK_STATE_DIR": str(logdir / "beat")}
        # The banner's last line: settings keep beat's own "Starting..." (INFO) out of the log.
        beat = start(beat_command(), beat_env, logdir / "beat.log", ready="maxinterval")
        trees = {**server_pids(), "worker": worker.pid, "beat": beat.pid}
        before = cpu_snapshot(trees)
        samples, pushed = _push_and_sample(items)
        cpu = cpu_used(before, cpu_snapshot(trees), ("postgres", "redis", "worker", "beat"))
    finally:
        if beat is not None:
            stop(beat)
        stop(worker)
    cores = {name: round(value / pushed["seconds"], 2) for name, value in cpu.items()}
    return _lag_figures(samples, pushed, count, seconds) | {
        "cpu_cores_used": cores,
        "load_average_1m": {"before": load_before, "after": _load()},
    }


def _push_and_sample(items: list[bytes]) -> tuple[list[tuple], dict]:
    """Push from a thread while this one samples, every LAG_SAMPLE_SECONDS, the newest
    committed event id and the watermark; sampling goes on until the watermark covers every
    event."""
    pushed: dict = {}
    producer = threading.Thread(target=_produce, args=(items, pushed))
    producer.start()
    samples = []
    deadline = None
    while True:
        samples.append(_sample())
        if not producer.is_alive():
            deadline = deadline or time.monotonic() + LAG_DRAIN_SECONDS
            _, newest, watermark = samples[-1]
            if newest >= len(items) and watermark >= newest:
                break
            if time.monotonic() > deadline:
                _progress("the rollups did not catch up within the drain time")
                break
        time.sleep(LAG_SAMPLE_SECONDS)
    producer.join()
    return samples, pushed


def _produce(items: list[bytes], pushed: dict) -> None:
    """LPUSH the items at LAG_RATE a second, every TICK whatever is due by then."""
    from errorsink.connections import redis_client
    from errorsink.ingest.queue import queue_name

    client, queue = redis_client(), queue_name()
    started = time.perf_counter()
    sent = 0
    while sent < len(items):
        due = min(len(items), int((time.perf_counter() - started) * LAG_RATE) + 1)
        if due > sent:
            client.lpush(queue, *items[sent:due])
            sent = due
        time.sleep(TICK)
    pushed["seconds"] = time.perf_counter() - started
    pushed["backlog_at_end"] = client.llen(queue)


def _sample() -> tuple[datetime, int, int]:
    """The database's clock, the newest committed event id and the watermark, in one read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT clock_timestamp(), (SELECT coalesce(max(id), 0) FROM errorsink_event), "
            "(SELECT coalesce(max(watermark), 0) FROM errorsink_rollup_state)"
        )
        return cursor.fetchone()


def _lag_figures(samples: list[tuple], pushed: dict, count: int, seconds: int) -> dict:
    """Per newly seen event id: from the first sample that saw it committed (and from its
    received_at) to the first sample whose watermark covered it."""
    from django.db import connection

    covered_after: dict[int, tuple[datetime, datetime]] = {}
    newest_seen = 0
    for index, (seen_at, newest, _) in enumerate(samples):
        if newest <= newest_seen:
            continue
        newest_seen = newest
        cover = next((at for at, _, watermark in samples[index:] if watermark >= newest), None)
        if cover is not None:
            covered_after[newest] = (seen_at, cover)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, received_at FROM errorsink_event WHERE id = ANY(%s)", [list(covered_after)]
        )
        received = dict(cursor.fetchall())
    committed = [(cover - seen).total_seconds() for seen, cover in covered_after.values()]
    from_received = [(covered_after[pk][1] - at).total_seconds() for pk, at in received.items()]
    return {
        "events_per_second": LAG_RATE,
        "seconds": seconds,
        "achieved_events_per_second": round(count / pushed["seconds"]),
        "queue_backlog_at_end_of_push": pushed["backlog_at_end"],
        "events_stored": newest_seen,
        "samples": len(committed),
        "never_covered": newest_seen > max(covered_after, default=0),
        "lag_after_commit_seconds": _spread(committed),
        "lag_after_received_at_seconds": _spread(from_received),
        "design_limit_seconds": 60,
    }


def _spread(values: list[float]) -> dict:
    if not values:
        return {}
    return {"p50": round(_percentile(values, 0.5), 2), "p95": round(_percentile(values, 0.95), 2),
            "max": round(max(values), 2)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Part 3: generated history, the rollups over it, and the pages and API that read them


def measure_scale(env: dict, logdir: Path, events: int, requests: int, plans: Path | None) -> dict:
    _tables_empty()
    load_before = _load()
    people, layout = _people_and_projects(events)
    generated = generate_events(layout, events=events)
    generated["vacuum_analyze_seconds"] = _vacuum_analyze(["errorsink_event", "errorsink_session"])
    _progress("computing the rollups")
    rollups = _compute_rollups(generated["events"])
    rollups["vacuum_analyze_seconds"] = _vacuum_analyze(
        ["errorsink_rollup_session", "errorsink_rollup_code", "errorsink_rollup_metric"]
    )
    rollups["tables"] = _table_sizes()
    big, baseline = people["big"], people["baseline"]
    queries = {window: _explain_quality(big["project"], window, plans) for window in WINDOWS}
    _progress("timing requests")
    timings = measure_requests(env, logdir, _targets(people), requests)
    return {
        "generated": generated,
        "rollups": rollups,
        "big_project_events": _project_events(big["project"]),
        "baseline_project_events": _project_events(baseline["project"]),
        "requests": timings,
        "quality_reads_ms_big_project": queries,
        "load_average_1m": {"before": load_before, "after": _load()},
    }


def _people_and_projects(events: int) -> tuple[dict, list[tuple[str, float]]]:
    """The big project and the baseline of 10,000 events, each with the user whose pages are
    timed and an errors:read key: one user belongs to every project (the small ones too), the
    other to the baseline only. Also the layout the generator spreads the events by."""
    from django.contrib.auth.models import User

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.models import Membership
    from errorsink.projects.services import project_add_member, project_create

    suffix = uuid.uuid4().hex[:8]
    everywhere = User.objects.create_user(f"bench-quality-all-{suffix}")
    alone = User.objects.create_user(f"bench-quality-baseline-{suffix}")
    shares = {"baseline": min(BASELINE_EVENTS / events, 0.05)}
    shares |= {f"small {n + 1}": share for n, share in enumerate(SMALL_SHARES)}
    shares["big"] = 1.0 - sum(shares.values())
    projects = {name: project_create(name=f"bench quality {name}", owner=everywhere)
                for name in shares}  # fmt: skip
    project_add_member(project=projects["baseline"], user=alone, role=Membership.OWNER)
    people = {}
    for name, user in (("big", everywhere), ("baseline", alone)):
        _, key = api_key_create(project=projects[name], scopes="errors:read", name="bench")
        people[name] = {"project": projects[name], "user": user, "key": key}
    return people, [(str(projects[name].id), share) for name, share in shares.items()]


# ---------------------------------------------------------------------------------------------
# Generated history: rows as ingest writes them, straight into PostgreSQL
#
# Each kind of item a session sends is a template, normalised once by the real ingest code for
# the columns that do not change; PostgreSQL fills in the rest per event (ids, times, builds,
# metrics, the item's own text) with format(). "@name@" marks those places, numbered in
# PLACEHOLDERS' order; a quoted one stays a JSON string, the others become JSON numbers.

PLACEHOLDERS = {"project": True, "session": True, "event": True, "when": True, "build": True,
                "rtt": False, "jitter": False, "loss": False, "mos": False,
                "epoch_ms": False}  # fmt: skip
SAMPLE_VALUES = {"session": "sample-session", "event": "sample-event", "build": "v0",
                 "when": "2026-11-01T00:00:00.000Z", "rtt": 420, "jitter": 48.5, "loss": 7.5,
                 "mos": 2.9, "epoch_ms": 1793491200000}  # fmt: skip
_IDS = {"project_id": "@project@", "session_id": "@session@", "event_id": "@event@"}
METRICS = {"rtt_ms": "@rtt@", "jitter_ms": "@jitter@", "packet_loss_pct": "@loss@", "mos": "@mos@"}


def _runner(kind: str, **fields) -> dict:
    return {"type": kind, **_IDS, **fields, "build_id": "@build@", "occurred_at": "@when@"}


def _sdk(sdk: str, name: str, event: dict) -> dict:
    # A browser SDK does not know the agent's build: ingest gives the event its session's.
    return {"type": "sdk_event", "sdk": sdk, "name": name, **_IDS, "occurred_at": "@when@",
            "event": event}  # fmt: skip


def _telnyx_warning(code: int, name: str, message: str) -> dict:
    return _sdk("telnyx", "telnyx.warning",
                {"warning": {"code": code, "name": name, "message": message}})  # fmt: skip


def _end(cause: str, cause_code: int | None, sip_code: int | None, reason: str | None) -> dict:
    codes = {"cause_code": cause_code, "sip_code": sip_code, "sip_reason": reason}
    return _runner("session_end", cause=cause, **{k: v for k, v in codes.items() if v is not None})


STACK = ("TypeError: Cannot read properties of undefined (reading 'text')\n"
         "    at onUserSpeechFinal (agent/handlers.js:88:21)\n"
         "    at Runner.dispatch (runner/dispatch.js:141:9)")  # fmt: skip
# (group, weight within the group, item). Troubled sessions send warnings (30% of all events),
# a session's last event says how it ended (5%), errors make 10%, the rest is info.
VARIANTS = [
    ("warning", 22, _runner("session_warning", code=31002, metrics=METRICS)),
    ("warning", 6, _runner("session_warning", code="HIGH_JITTER", metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code=31001, metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code=31003, metrics=METRICS)),
    ("warning", 14, _runner("session_warning", code="LOW_MOS", metrics=METRICS)),
    ("warning", 8, _telnyx_warning(32001, "LOW_BYTES_RECEIVED", "No audio received")),
    ("warning", 4, _telnyx_warning(32002, "LOW_BYTES_SENT", "No audio sent")),
    ("warning", 8, _telnyx_warning(33001, "ICE_CONNECTIVITY_LOST", "ICE connectivity lost")),
    ("warning", 3, _telnyx_warning(33002, "ICE_GATHERING_TIMEOUT", "ICE gathering timed out")),
    ("warning", 2, _telnyx_warning(33003, "ICE_GATHERING_EMPTY", "No ICE candidates")),
    ("warning", 3, _telnyx_warning(33004, "PEER_CONNECTION_FAILED", "Peer connection failed")),
    ("warning", 2, _telnyx_warning(33005, "ONLY_HOST_ICE_CANDIDATES", "Only host candidates")),
    ("error", 30, _runner("session_error", code="AGENT_HANDLER_FAILED", recoverable=False,
                          message="handler threw on turn 3", stack=STACK,
                          customer_context={"userId": "u_4821", "tier": "pro"})),
    ("error", 10, _runner("session_error", code="AGENT_CHILD_CRASHED",
                          message="agent child exited with code 1")),
    ("error", 5, _runner("agent_error", message="legacy crash: child process exited")),
    ("error", 5, _runner("session_error", code="RUNNER_INTERNAL",
                         message="crash TTS could not play")),
    ("error", 15, _runner("session_error", code="WEBRTC_CONNECTION_FAILED",
                          message="ICE failed before the call connected")),
    ("error", 20, _sdk("telnyx", "telnyx.error", {"error": {
        "code": 45002, "name": "WEBSOCKET_ERROR", "message": "Connection to server lost"}})),
    ("error", 15, _sdk("onebudd", "error", {
        "type": "error", "version": "1", "session_id": "@session@", "timestamp": "@epoch_ms@",
        "payload": {"code": "stt_failed", "message": "Speech recognition failed: invalid audio "
                    "format", "fatal": False}})),
    ("info", 100, _runner("session_error", code="SESSION_IDLE_TIMEOUT",
                          message="no activity for 300 s")),
    ("end", 68, _end("NORMAL_CLEARING", 16, 200, "OK")),
    ("end", 8, _end("USER_BUSY", 17, 486, "Busy Here")),
    ("end", 8, _end("NO_ANSWER", 19, 480, "Temporarily Unavailable")),
    ("end", 5, _end("CALL_REJECTED", 21, 603, "Decline")),
    ("end", 3, _end("UNALLOCATED_NUMBER", 1, 404, "Not Found")),
    ("end", 3, _end("PURGE", None, None, None)),
    ("end", 5, _sdk("telnyx", "telnyx.notification", {"type": "callUpdate", "call": {
        "state": "hangup", "cause": "NORMAL_CLEARING", "causeCode": 16, "sipCode": 200,
        "sipReason": "OK"}})),
]  # fmt: skip
GROUPS = ("warning", "error", "info", "end")


def _filled(template: object, values: dict) -> object:
    """The template with every placeholder replaced by its value."""
    if isinstance(template, dict):
        return {key: _filled(value, values) for key, value in template.items()}
    if isinstance(template, str) and template.startswith("@") and template.endswith("@"):
        return values[template.strip("@")]
    return template


def _format_string(template: dict) -> str:
    """The item's JSON text as a format() string: placeholders become %N$s."""
    text = orjson.dumps(template).decode().replace("%", "%%")
    for position, (name, quoted) in enumerate(PLACEHOLDERS.items(), start=1):
        text = text.replace(f'"@{name}@"', f'"%{position}$s"' if quoted else f"%{position}$s")
    return text


def _variants_create(project_id: str) -> dict[str, list[int]]:
    """The temp table of templates with their normalised columns; per group, 100 slots of
    variant ids in proportion to the weights (a random slot picks a variant)."""
    from django.db import connection

    from errorsink.ingest.batch import batch_rows

    rows, slots = [], {group: [] for group in GROUPS}
    for number, (group, weight, template) in enumerate(VARIANTS):
        sample = _filled(template, {**SAMPLE_VALUES, "project": project_id})
        [row] = batch_rows([orjson.dumps(sample)], received_at=datetime.now(UTC)).rows
        rows.append((number, row.kind, row.code, row.name, row.message, row.source, row.severity,
                     row.recoverable, row.stack, row.customer_context, row.details,
                     row.item_type, _format_string(template), "metrics" in template))  # fmt: skip
        slots[group] += [number] * weight
    assert all(len(numbers) == 100 for numbers in slots.values()), "weights must add up to 100"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_variant (id int PRIMARY KEY, kind text, "
            "code text, name text, message text, source text, severity text, "
            "recoverable boolean, stack text, customer_context jsonb, details jsonb, "
            "item_type text, raw text, metrics boolean)"
        )
        cursor.execute("TRUNCATE bench_variant")
        cursor.executemany(f"INSERT INTO bench_variant VALUES ({', '.join(['%s'] * 14)})", rows)
    return slots


# Sessions in time order, each with its project (by hash, in the layout's shares), build (the
# one released before it started, the older one for part of a 12-hour rollout), 12 to 28 events
# over 2 to 12 minutes, and whether it has quality trouble; each event picks its variant and
# metric values by hash, so a run is repeatable. The sessions table gets each session's counts
# from exactly the rows inserted, as ingest's upsert does.
_GENERATE = """
WITH sessions AS (
    SELECT s, x.h, %(start)s::timestamptz + x.at * interval '1 second' AS started,
           (%(projects)s::uuid[])[1 + width_bucket((x.h %% 100000)::int, %(thresholds)s::int[])]
               AS project_id,
           (%(builds)s::text[])[1 + y.k - CASE WHEN y.k > 0 AND y.since < %(rollout)s
               AND (x.h >> 32) %% 1000 >= y.since / %(rollout)s * 1000 THEN 1 ELSE 0 END]
               AS build_id,
           md5('session' || s)::uuid::text AS session_id,
           (x.h >> 8) %% 100 < %(troubled)s AS troubled,
           (12 + (x.h >> 16) %% 17)::int AS events,
           (120 + (x.h >> 24) %% 600)::int AS seconds
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS s
    CROSS JOIN LATERAL (SELECT hashint8extended(s, 1) & 9223372036854775807 AS h,
                               (s + 0.5) * %(spacing)s AS at) AS x
    CROSS JOIN LATERAL (SELECT k, x.at - k * %(period)s AS since
                        FROM least(floor(x.at / %(period)s)::int, %(last_build)s) AS k) AS y
), events AS (
    SELECT ss.project_id, ss.session_id, ss.build_id, z.r,
           date_trunc('milliseconds',
                      ss.started + ss.seconds * j::float8 / (ss.events - 1) * interval '1 second')
               AS occurred_at,
           md5('event' || (ss.s * 32 + j))::uuid::text AS event_id,
           CASE WHEN j = ss.events - 1 THEN (%(end_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                WHEN ss.troubled AND z.r %% 1000 < 700
                    THEN (%(warning_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                WHEN z.r %% 1000 < CASE WHEN ss.troubled THEN 800 ELSE 110 END
                    THEN (%(error_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int]
                ELSE (%(info_slots)s::int[])[1 + ((z.r >> 10) %% 100)::int] END AS variant,
           40 + (z.r >> 20) %% 900 AS rtt,
           round(((z.r >> 30) %% 1200)::numeric / 10, 1) AS jitter,
           round(((z.r >> 40) %% 150)::numeric / 10, 1) AS loss,
           round(1 + ((z.r >> 50) %% 340)::numeric / 100, 2) AS mos
    FROM sessions ss
    CROSS JOIN LATERAL generate_series(0, ss.events - 1) AS j
    CROSS JOIN LATERAL (SELECT hashint8extended(ss.s * 32 + j, 2) & 9223372036854775807 AS r) z
), inserted AS (
    INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
        occurred_at, received_at, source, severity, recoverable, build_id, stack,
        customer_context, details, item_type, raw)
    SELECT e.project_id, e.event_id, e.session_id, v.kind, v.code, v.name, v.message,
           e.occurred_at, e.occurred_at + (40 + (e.r >> 12) %% 400) * interval '1 millisecond',
           v.source, v.severity, v.recoverable, e.build_id, v.stack, v.customer_context,
           CASE WHEN v.metrics THEN jsonb_build_object('metrics', jsonb_build_object(
               'rtt_ms', e.rtt, 'jitter_ms', e.jitter, 'packet_loss_pct', e.loss, 'mos', e.mos))
               ELSE v.details END,
           v.item_type,
           format(v.raw, e.project_id, e.session_id, e.event_id,
                  to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  e.build_id, e.rtt, e.jitter, e.loss, e.mos,
                  (extract(epoch FROM e.occurred_at) * 1000)::bigint)::json
    FROM events e JOIN bench_variant v ON v.id = e.variant
    RETURNING project_id, session_id, build_id, kind, code, occurred_at, customer_context
)
INSERT INTO errorsink_session (project_id, session_id, build_id, customer_context, first_seen,
    last_seen, error_count, warning_count, event_count, end_cause)
SELECT project_id, session_id, max(build_id),
       (array_agg(customer_context) FILTER (WHERE customer_context IS NOT NULL))[1],
       min(occurred_at), max(occurred_at), count(*) FILTER (WHERE kind = 'error'),
       count(*) FILTER (WHERE kind = 'warning'), count(*),
       coalesce(max(code) FILTER (WHERE kind = 'termination'), '')
FROM inserted
GROUP BY project_id, session_id
"""


def generate_events(layout: list[tuple[str, float]], *, events: int) -> dict:
    """About `events` events over the 30-day window up to a quarter of an hour ago, across the
    projects of `layout` (project id, share of the events); the largest share takes the rest."""
    from django.db import connection

    from errorsink.quality.selectors import quality_window

    layout = sorted(layout, key=lambda entry: entry[1])
    sessions = max(1, round(events / EVENTS_PER_SESSION))
    start = quality_window("30d").start
    span = (datetime.now(UTC) - timedelta(minutes=15) - start).total_seconds()
    params = {
        "start": start, "spacing": span / sessions, "period": span / BUILDS,
        "rollout": ROLLOUT_SECONDS, "last_build": BUILDS - 1, "troubled": TROUBLED_PERCENT,
        "builds": [f"v3.{k + 1}.0" for k in range(BUILDS)],
        "projects": [project for project, _ in layout],
        "thresholds": _thresholds([share for _, share in layout[:-1]]),
    }  # fmt: skip
    slots = _variants_create(layout[0][0])
    params |= {f"{group}_slots": numbers for group, numbers in slots.items()}
    started = time.perf_counter()
    for first in range(0, sessions, SESSIONS_PER_CHUNK):
        last = min(sessions, first + SESSIONS_PER_CHUNK) - 1
        with connection.cursor() as cursor:
            cursor.execute(_GENERATE, params | {"first": first, "last": last})
        if first == 0:
            _rows_check(project_ids={project for project, _ in layout})
        _generation_progress(started, last + 1, sessions)
    seconds = time.perf_counter() - started
    return _generated_summary(seconds, sessions)


def _thresholds(shares: list[float]) -> list[int]:
    """width_bucket() bounds out of 100,000 for the cumulative shares."""
    bounds, total = [], 0.0
    for share in shares:
        total += share
        bounds.append(round(total * 100_000))
    return bounds


def _generation_progress(started: float, done_sessions: int, sessions: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM errorsink_event_id_seq")
        stored = cursor.fetchone()[0]
    elapsed = time.perf_counter() - started
    left = elapsed / done_sessions * (sessions - done_sessions)
    _progress(f"generated {stored:,} events ({done_sessions:,}/{sessions:,} sessions), "
              f"{stored / elapsed:,.0f} events/s, about {left:.0f} s left")  # fmt: skip


def _generated_summary(seconds: float, sessions: int) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*), count(*) FILTER (WHERE details ? 'metrics') "
            "FROM errorsink_event GROUP BY kind ORDER BY kind"
        )
        by_kind = {kind: (count, metrics) for kind, count, metrics in cursor.fetchall()}
        cursor.execute("SELECT count(*), count(DISTINCT build_id) FROM errorsink_session")
        stored_sessions, builds = cursor.fetchone()
    total = sum(count for count, _ in by_kind.values())
    return {
        "events": total, "sessions": stored_sessions, "builds": builds,
        "seconds": round(seconds, 1), "events_per_second": round(total / seconds),
        "share_by_kind": {kind: round(count / total, 3) for kind, (count, _) in by_kind.items()},
        "warnings_with_metrics": by_kind.get("warning", (0, 0))[1],
    }  # fmt: skip


_CHECKED = ("project_id", "event_id", "session_id", "kind", "code", "name", "message",
            "occurred_at", "received_at", "source", "severity", "recoverable", "stack",
            "item_type", "raw")  # fmt: skip


def _rows_check(*, project_ids: set[str]) -> None:
    """Every variant among the first rows, read back and normalised again by the real ingest
    code from its own item text, must give the row stored: the generated rows are what ingest
    would have written."""
    from django.db import connection

    from errorsink.ingest.batch import batch_rows

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (code, item_type) project_id::text, event_id, session_id, kind, "
            "code, name, message, occurred_at, received_at, source, severity, recoverable, "
            "stack, item_type, raw::text, build_id, customer_context::text, details::text "
            "FROM errorsink_event WHERE id <= 20000 ORDER BY code, item_type, id"
        )
        stored = cursor.fetchall()
    for values in stored:
        row = dict(zip((*_CHECKED, "build_id", "customer_context", "details"), values, strict=True))
        [again] = batch_rows([row["raw"].encode()], received_at=row["received_at"]).rows
        wrong = [name for name in _CHECKED if getattr(again, name) != row[name]]
        wrong += [name for name in ("customer_context", "details")
                  if _json(getattr(again, name)) != _json(row[name])]  # fmt: skip
        if again.build_id and again.build_id != row["build_id"]:
            wrong.append("build_id")
        if wrong or row["project_id"] not in project_ids:
            raise RuntimeError(f"generated row differs from ingest's in {wrong}: {row}")


def _json(text: str | None) -> object:
    return None if text is None else orjson.loads(text)


def _compute_rollups(events: int) -> dict:
    servers = server_pids()
    before = cpu_snapshot(servers)
    started = time.perf_counter()
    runs = roll_up_everything()
    seconds = time.perf_counter() - started
    cpu = cpu_used(before, cpu_snapshot(servers), ("postgres", "redis", "bench"))
    return {"seconds": round(seconds, 1), "runs": runs,
            "events_per_second": round(events / seconds), "cpu_seconds": cpu}  # fmt: skip


def _table_sizes() -> dict:
    from django.db import connection

    tables = ["errorsink_event", "errorsink_session", "errorsink_rollup_session",
              "errorsink_rollup_code", "errorsink_rollup_metric"]  # fmt: skip
    sizes = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relname = %s",
                [table],
            )
            rows, size = cursor.fetchone()
            sizes[table] = {"rows": rows, "megabytes": round(size / 2**20)}
        cursor.execute("SELECT sum(cardinality(values)) FROM errorsink_rollup_metric")
        sizes["errorsink_rollup_metric"]["values"] = cursor.fetchone()[0]
    return sizes


def _project_events(project) -> int:
    from errorsink.sessions.models import Event

    return Event.objects.filter(project=project).count()


def _explain_quality(project, window: str, plans: Path | None) -> dict:
    """The execution time of each read project_quality makes, from EXPLAIN ANALYZE (the
    plans go to `plans` when given)."""
    from django.db import connection

    from errorsink.quality.selectors import project_quality

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        project_quality(project_id=project.id, window=window)
    times = {}
    with connection.cursor() as cursor:
        for sql, params in captured:
            table = next(word for word in sql.split() if word.startswith("errorsink_rollup"))
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            times[table.removeprefix("errorsink_")] = round(plan[0]["Execution Time"], 1)
            if plans is not None:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                text = "\n".join(line for (line,) in cursor.fetchall())
                with plans.open("a") as handle:
                    handle.write(f"-- {window} {table}\n{text}\n\n")
    return times


def _session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _targets(people: dict) -> dict[str, dict[str, tuple[str, dict]]]:
    """Per project (the big one, the baseline): each request's path and headers."""
    targets = {}
    for role in ("big", "baseline"):
        project, user = people[role]["project"], people[role]["user"]
        bearer = {"Authorization": f"Bearer {people[role]['key']}"}
        cookie = {"Cookie": f"sessionid={_session_cookie(user)}"}
        requests = {f"api_quality_{w}": (f"/api/v1/projects/{project.id}/quality?window={w}",
                                         bearer) for w in WINDOWS}  # fmt: skip
        for window in PAGE_WINDOWS:
            page = f"/projects/{project.id}/?window={window}"
            requests[f"project_page_{window}"] = (page, cookie)
        requests["projects_list"] = ("/", cookie)
        targets[role] = requests
    return targets


def measure_requests(env: dict, logdir: Path, targets: dict, rounds: int) -> dict:
    """Every request in turn, round after round, so the machine's noise falls on all alike."""
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    daphne = start(web_command(port=port, bind="127.0.0.1"), env, logdir / "daphne.log", port)
    timings: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            for round_ in range(WARMUP_REQUESTS + rounds):
                for role, requests in targets.items():
                    for name, (path, headers) in requests.items():
                        seconds = _timed_get(client, path, headers)
                        if round_ >= WARMUP_REQUESTS:
                            timings[role][name].append(seconds)
                if round_ % 10 == 9:
                    _progress(f"{round_ + 1} of {WARMUP_REQUESTS + rounds} rounds of requests")
    finally:
        stop(daphne)
    return _request_figures(timings, rounds)


def _timed_get(client, path: str, headers: dict) -> float:
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    seconds = time.perf_counter() - started
    client.cookies.clear()  # each request says who it is by its own headers
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return seconds


def _request_figures(timings: dict, rounds: int) -> dict:
    figures: dict = {"requests_each": rounds}
    for role, by_name in timings.items():
        figures[role] = {
            name: {"p50_ms": round(_percentile(values, 0.5) * 1000, 1),
                   "p95_ms": round(_percentile(values, 0.95) * 1000, 1)}
            for name, values in by_name.items()
        }  # fmt: skip
    figures["ratio_p50_big_to_baseline"] = {
        name: round(values["p50_ms"] / figures["baseline"][name]["p50_ms"], 1)
        for name, values in figures["big"].items()
    }
    return figures


# ---------------------------------------------------------------------------------------------


COUNTS = [
    ("--events", SCALE_EVENTS, "events generated for the scale part"),
    ("--cost-events", COST_EVENTS, "items ingested for the cost part"),
    ("--lag-seconds", LAG_SECONDS, "seconds of pushing at 1,000 items/s for the lag part"),
    ("--requests", REQUESTS, "timed requests of each kind in the scale part"),
]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, default, meaning in COUNTS:
        parser.add_argument(flag, type=int, default=default, help=f"{meaning} ({default:,})")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--plans", type=Path, help="write the quality reads' plans to this file")
    parser.add_argument("--keep", action="store_true", help=f"leave the database {DATABASE}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {', '.join(sorted(unknown))}; parts are {PARTS}")
    env = _environment()
    result: dict = {"benchmark": "quality", "cpus": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as logdir:
            result |= _run_parts(env, Path(logdir), parts, args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _database_drop(env["DATABASE_URL"])
    print(json.dumps(result, indent=2, default=str))
    sys.stdout.flush()
    return result


def _run_parts(env: dict, logdir: Path, parts: list[str], args: argparse.Namespace) -> dict:
    from errorsink.projects.services import project_create

    result = {}
    project_id = str(project_create(name="bench quality live").id)
    if "cost" in parts:
        _progress(f"cost: ingesting {args.cost_events:,} items, then the rollups")
        result["cost"] = measure_cost(env, logdir, project_id, args.cost_events)
    if "lag" in parts:
        _progress(f"lag: {args.lag_seconds} s at {LAG_RATE:,} items/s with worker and beat")
        result["lag"] = measure_lag(env, logdir, project_id, args.lag_seconds)
    if "scale" in parts:
        _progress(f"scale: {args.events:,} events over 30 days")
        result["scale"] = measure_scale(env, logdir, args.events, args.requests, args.plans)
    return result


if __name__ == "__main__":
    main()
