"""Part 3: generated history, the rollups over it, and the pages and API that read them."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from pathlib import Path

from bench.common import percentile, tables_empty
from bench.cpu import cpu_snapshot, cpu_used, server_pids
from bench.quality.common import (
    BASELINE_EVENTS,
    PAGE_WINDOWS,
    SMALL_SHARES,
    WARMUP_REQUESTS,
    WINDOWS,
    load_average,
    progress,
    roll_up_everything,
    vacuum_analyze,
)
from bench.quality.generate import generate_events
from devstack.harness import Stack

# ---------------------------------------------------------------------------------------------
# Part 3: generated history, the rollups over it, and the pages and API that read them


# The figures windows merge.
ROLLUP_TABLES = (
    "errorsink_figure_sessions",
    "errorsink_figure_codes",
    "errorsink_figure_metrics",
)


def measure_scale(env: dict, logdir: Path, events: int, requests: int, plans: Path | None) -> dict:
    tables_empty()
    load_before = load_average()
    people, layout = _people_and_projects(events)
    generated = generate_events(layout, events=events)
    generated["vacuum_analyze_seconds"] = vacuum_analyze(["errorsink_event", "errorsink_session"])
    progress("computing the rollups")
    rollups = _compute_rollups(generated["events"])
    rollups["vacuum_analyze_seconds"] = vacuum_analyze(list(ROLLUP_TABLES))
    rollups["tables"] = _table_sizes()
    big, baseline = people["big"], people["baseline"]
    queries = {window: _explain_quality(big["project"], window, plans) for window in WINDOWS}
    progress("timing requests")
    timings = measure_requests(env, logdir, _targets(people), requests)
    return {
        "generated": generated,
        "rollups": rollups,
        "big_project_events": _project_events(big["project"]),
        "baseline_project_events": _project_events(baseline["project"]),
        "requests": timings,
        "quality_reads_ms_big_project": queries,
        "load_average_1m": {"before": load_before, "after": load_average()},
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

    tables = ["errorsink_event", "errorsink_session", *ROLLUP_TABLES]
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
    return sizes


def _project_events(project) -> int:
    from errorsink.sessions.models import Event

    return Event.objects.filter(project=project).count()


def _explain_quality(project, window: str, plans: Path | None) -> dict:
    """The execution time of each read project_quality makes, from EXPLAIN ANALYZE (the
    plans go to `plans` when given)."""
    from django.db import connection

    from errorsink.quality.figure_reads import project_quality

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        project_quality(project_id=project.id, window=window)
    times = {}
    with connection.cursor() as cursor:
        for sql, params in captured:
            table = next(word for word in sql.split() if word.startswith("errorsink_figure"))
            table = _unique(table.removeprefix("errorsink_"), times)
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            times[table] = round(plan[0]["Execution Time"], 1)
            if plans is not None:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                text = "\n".join(line for (line,) in cursor.fetchall())
                with plans.open("a") as handle:
                    handle.write(f"-- {window} {table}\n{text}\n\n")
    return times


def _unique(name: str, taken: dict) -> str:
    """The table's name, numbered from its second read on (the sessions table is read twice)."""
    number = 1
    while (f"{name}_{number}" if number > 1 else name) in taken:
        number += 1
    return f"{name}_{number}" if number > 1 else name


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
    stack = Stack(env, logdir)
    port = stack.web().port
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
                    progress(f"{round_ + 1} of {WARMUP_REQUESTS + rounds} rounds of requests")
    finally:
        stack.stop()
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
            name: {"p50_ms": round(percentile(values, 0.5) * 1000, 1),
                   "p95_ms": round(percentile(values, 0.95) * 1000, 1)}
            for name, values in by_name.items()
        }  # fmt: skip
    figures["ratio_p50_big_to_baseline"] = {
        name: round(values["p50_ms"] / figures["baseline"][name]["p50_ms"], 1)
        for name, values in figures["big"].items()
    }
    return figures
