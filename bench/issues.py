"""Triage reads at scale (docs/issues.md): `--events` events (10 million by default) of which a
third are errors, grouped into `--issues` issues (100,000) with a skewed spread (a few issues
hold most errors, most issues a handful), written straight into PostgreSQL as ingest writes them
(issues, their hours and sessions counted from the events by SQL, then checked against the
recount of a sample); then the issues list, the last 20 errors, a text search, an issue's
events and its page, each timed over `--requests` requests in this process (Django's test
client: the whole view or API operation, without a network hop).

Run with `make bench` (or `python -m bench.issues [--events N] [--issues N]`); progress goes to
stderr, the JSON to stdout. It has its own database, dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time

from bench.common import bench_env, migrate, replace_path

DATABASE = "errorsink_bench_issues"
REDIS_DB = "11"
EVENTS = 10_000_000
ISSUES = 100_000
REQUESTS = 200
WARMUP = 5
CHUNK = 1_000_000
SESSIONS = 500_000
BUILDS = 8
DAYS = 30
P95_TARGET_MS = 50

# Kinds in ingest's proportions: a third errors. An error's issue is skewed towards the first
# ones (random()^3; "+ 0 * n" ties the draw to the row, or PostgreSQL draws it once): issue 0
# gets about 5% of errors, the last ones a few each. Its message has the issue's own word
# ("w<issue>"), a number and a hex id, as real messages do.
_EVENTS = """
INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
    occurred_at, received_at, source, severity, recoverable, build_id, stack, details,
    item_type, raw, fingerprint)
SELECT %(project)s, 'e' || n, 's' || s.session, k.kind,
       CASE k.kind WHEN 'error' THEN 'CODE_' || (i.issue %% 40) WHEN 'warning' THEN '31002'
            ELSE 'NORMAL_CLEARING' END,
       '', CASE WHEN k.kind = 'error'
                THEN 'handler w' || i.issue || ' failed after ' || (n %% 997) || ' ms for '
                     || md5(n::text)
                ELSE 'quality' END,
       t.at, t.at, 'agent', 'high', false, 'v' || (s.session %% %(builds)s), '', '{}'::jsonb,
       'session_error', '{}'::json,
       CASE WHEN k.kind = 'error' THEN md5('issue' || i.issue)::uuid END
FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS n
CROSS JOIN LATERAL (SELECT (n * 7919) %% %(sessions)s AS session) AS s
CROSS JOIN LATERAL (SELECT CASE WHEN n %% 3 = 0 THEN 'error' WHEN n %% 3 = 1 THEN 'warning'
                                ELSE 'termination' END AS kind) AS k
CROSS JOIN LATERAL (SELECT floor(%(issues)s * power(random() + 0 * n, 3))::int AS issue) AS i
CROSS JOIN LATERAL (SELECT now() - (%(days)s * 86400 * (1 - n::float8 / %(events)s))
                           * interval '1 second' AS at) AS t
"""

_ISSUES = """
INSERT INTO errorsink_issue (project_id, fingerprint, fingerprint_parts, title, code, status,
    regressed, event_count, session_count, first_seen, last_seen, builds)
SELECT e.project_id, e.fingerprint, jsonb_build_array('code: ' || min(e.code)), min(e.message),
       min(e.code), 'unresolved', false, count(*), count(DISTINCT e.session_id),
       min(e.occurred_at), max(e.occurred_at), array_agg(DISTINCT e.build_id)
FROM errorsink_event e WHERE e.kind = 'error'
GROUP BY e.project_id, e.fingerprint
"""

_ISSUE_HOURS = """
INSERT INTO errorsink_issue_hour (issue_id, hour, count)
SELECT i.id, date_trunc('hour', e.occurred_at, 'UTC'), count(*)
FROM errorsink_event e JOIN errorsink_issue i
  ON i.project_id = e.project_id AND i.fingerprint = e.fingerprint
WHERE e.kind = 'error'
GROUP BY 1, 2
"""

_ISSUE_SESSIONS = """
INSERT INTO errorsink_issue_session (issue_id, session_id)
SELECT DISTINCT i.id, e.session_id
FROM errorsink_event e JOIN errorsink_issue i
  ON i.project_id = e.project_id AND i.fingerprint = e.fingerprint
WHERE e.kind = 'error'
"""

_SESSIONS = """
INSERT INTO errorsink_session (project_id, session_id, build_id, first_seen, last_seen,
    error_count, warning_count, event_count, end_cause)
SELECT project_id, session_id, min(build_id), min(occurred_at), max(occurred_at),
       count(*) FILTER (WHERE kind = 'error'), count(*) FILTER (WHERE kind = 'warning'),
       count(*), coalesce(max(code) FILTER (WHERE kind = 'termination'), '')
FROM errorsink_event GROUP BY project_id, session_id
"""


def _progress(message: str) -> None:
    print(f"[bench.issues {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _environment(*, reuse: bool = False) -> dict[str, str]:
    import psycopg

    env = bench_env()
    # Thousands of requests a minute with one key: a limit this high keeps its Redis round trip
    # in every request, as in production, without refusing the benchmark.
    os.environ["ERRORSINK_API_RATE_LIMIT"] = "1000000000"
    if not reuse:
        with psycopg.connect(replace_path(env["DATABASE_URL"], "/postgres"),
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    env["DATABASE_URL"] = replace_path(env["DATABASE_URL"], f"/{DATABASE}")
    env["REDIS_URL"] = replace_path(env["REDIS_URL"], f"/{REDIS_DB}")
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL")})
    migrate(env)
    import django

    django.setup()
    return env


def _drop(env: dict[str, str]) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(replace_path(env["DATABASE_URL"], "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def generate(*, events: int, issues: int) -> dict:
    """The project, its member and key, and the rows; returns what was made and how long."""
    from django.contrib.auth.models import User
    from django.db import connection

    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.services import project_create

    user = User.objects.create_user("bench", password="bench-password")
    project = project_create(name="big", owner=user)
    _, key = api_key_create(project=project, scopes="errors:read")
    started = time.perf_counter()
    params = {"project": str(project.id), "builds": BUILDS, "sessions": SESSIONS,
              "issues": issues, "days": DAYS, "events": events}  # fmt: skip
    with connection.cursor() as cursor:
        for start in range(1, events + 1, CHUNK):
            end = min(start + CHUNK - 1, events)
            cursor.execute(_EVENTS, {**params, "start": start, "end": end})
            _progress(f"events {end:,} of {events:,} ({time.perf_counter() - started:.0f} s)")
        derived = [("issues", _ISSUES), ("issue hours", _ISSUE_HOURS),
                   ("issue sessions", _ISSUE_SESSIONS), ("sessions", _SESSIONS)]  # fmt: skip
        for name, sql in derived:
            cursor.execute(sql)
            _progress(f"{name} ({time.perf_counter() - started:.0f} s)")
        for table in ("errorsink_event", "errorsink_issue", "errorsink_issue_hour",
                      "errorsink_issue_session", "errorsink_session"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("SELECT count(*) FROM errorsink_issue")
        made_issues = cursor.fetchone()[0]
    _progress(f"generated in {time.perf_counter() - started:.0f} s")
    return {"user": user, "project": project, "key": key, "issues": made_issues,
            "seconds": round(time.perf_counter() - started)}  # fmt: skip


def existing() -> dict:
    """What a --keep run made: its user, project, a new key, and the issues."""
    from django.contrib.auth.models import User

    from errorsink.issues.models import Issue
    from errorsink.projects.api_keys import api_key_create
    from errorsink.projects.models import Project

    project = Project.objects.get(name="big")
    _, key = api_key_create(project=project, scopes="errors:read")
    return {"user": User.objects.get(username="bench"), "project": project, "key": key,
            "issues": Issue.objects.filter(project=project).count(), "seconds": 0}  # fmt: skip


def check_sample(project) -> int:
    """The generated counters of a sample of issues equal a recount from their events, as
    ingest's would (tests/errorsink/issues/test_ingest.py holds ingest to the recount)."""
    from django.db.models import Count, Max, Min

    from errorsink.issues.models import Issue
    from errorsink.sessions.models import Event

    sample = list(Issue.objects.filter(project=project).order_by("?")[:20])
    for issue in sample:
        events = Event.objects.filter(project=project, kind="error", fingerprint=issue.fingerprint)
        recount = events.aggregate(n=Count("id"), s=Count("session_id", distinct=True),
                                   first=Min("occurred_at"), last=Max("occurred_at"))  # fmt: skip
        got = (issue.event_count, issue.session_count, issue.first_seen, issue.last_seen)
        assert got == (recount["n"], recount["s"], recount["first"], recount["last"]), issue.id
    return len(sample)


def _timed(client, url: str, requests: int, headers: dict | None = None) -> dict:
    for _ in range(WARMUP):
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, headers=headers or {})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
            "max_ms": round(times[-1], 1), "under_target": p95 < P95_TARGET_MS}  # fmt: skip


def measure(made: dict, requests: int) -> dict:
    from django.test import Client

    from errorsink.issues.models import Issue

    project, key = made["project"], made["key"]
    biggest = Issue.objects.filter(project=project).order_by("-event_count").first()
    smallest = Issue.objects.filter(project=project).order_by("event_count", "id").first()
    # A word of a middling issue: rarer than "failed", commoner than an id.
    ranked = Issue.objects.filter(project=project).order_by("-event_count")
    middling = ranked[min(1000, ranked.count() // 2)]
    word = middling.title.split()[1]
    api, page = Client(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
    # One access-log line per request would be the loudest part of the measurement.
    logging.getLogger("errorsink.api.access").setLevel(logging.WARNING)
    page.force_login(made["user"])
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/api/v1/projects/{project.id}"
    targets = {
        "api_issues": f"{base}/issues",
        "api_issues_by_count": f"{base}/issues?sort=count",
        "api_issues_search": f"{base}/issues?q={word}",
        "api_last_20_errors": f"{base}/session-errors",
        "api_errors_text_search": f"{base}/session-errors?q={word}",
        "api_biggest_issue_events": f"{base}/issues/{biggest.id}/events",
        "api_smallest_issue_events": f"{base}/issues/{smallest.id}/events",
        "api_sessions": f"{base}/sessions",
    }
    timings = {}
    for name, url in targets.items():
        _progress(f"timing {name}")
        timings[name] = _timed(api, url, requests, auth)
    for name, issue in (("page_biggest_issue", biggest), ("page_smallest_issue", smallest)):
        _progress(f"timing {name}")
        timings[name] = _timed(page, f"/projects/{project.id}/issues/{issue.id}/", requests)
    return {"search_word": word, "biggest_issue_events": biggest.event_count,
            "smallest_issue_events": smallest.event_count, "timings": timings}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.issues")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--issues", type=int, default=ISSUES)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="time what a --keep run left, not generating again"
    )
    args = parser.parse_args(argv)
    env = _environment(reuse=args.reuse)
    try:
        made = existing() if args.reuse else generate(events=args.events, issues=args.issues)
        checked = check_sample(made["project"])
        result = {"benchmark": "issues", "events": args.events, "issues": made["issues"],
                  "generation_seconds": made["seconds"], "issues_checked_by_recount": checked,
                  **measure(made, args.requests)}  # fmt: skip
    finally:
        if not args.keep:
            _drop(env)
    print(json.dumps(result, indent=2, default=str))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
