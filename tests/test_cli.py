"""The real `errorsink` console script against a real Daphne on the test database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from devstack.processes import free_port
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey, SessionSettings
from errorsink.projects.services import project_create
from errorsink.quality.rollups import rollups_update
from errorsink.sessions.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

ERRORSINK = Path(sys.executable).parent / "errorsink"
CHECKOUT = Path(__file__).resolve().parent.parent


@pytest.fixture
def other_project(charlie):
    return project_create(name="Someone else's bot", owner=charlie)


@pytest.fixture
def cli(live_server_url, project):
    _, key = api_key_create(project=project, scopes=",".join(ApiKey.SCOPES), name="cli")

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith("ERRORSINK_") or k == "PATH"
        }
        environ.update(
            ERRORSINK_URL=live_server_url, ERRORSINK_API_KEY=key, ERRORSINK_PROJECT=str(project.id)
        )
        environ.update(env or {})
        return subprocess.run(
            [str(ERRORSINK), *args], env=environ, capture_output=True, text=True, timeout=60
        )

    run.key, run.url, run.project = key, live_server_url, str(project.id)
    return run


def _event(project, number: int, **fields) -> Event:
    now = timezone.now()
    values = dict(
        project=project, event_id=f"cli-{number}", session_id=f"sess-{number % 2}",
        kind=Event.ERROR, code="AGENT_CHILD_CRASHED", message=f"crash number {number}",
        occurred_at=now - timedelta(minutes=10 - number),
        received_at=now - timedelta(minutes=10 - number),
        source="agent", severity="high", recoverable=False, item_type="session_error", raw={},
    )  # fmt: skip
    values.update(fields)
    return Event.objects.create(**values)


def test_it_lists_errors_as_an_aligned_table_newest_first(cli, project):
    for number in range(3):
        _event(project, number)
    result = cli("projects", "errors", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "CODE", "SOURCE", "OUTCOME", "SESSION", "MESSAGE"]
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:]] == ["2", "1", "0"]
    message_column = lines[0].index("MESSAGE")
    assert all(line[message_column:].startswith("crash number") for line in lines[1:])
    assert "fatal" in lines[1]


def test_it_lists_one_sessions_errors(cli, project):
    for number in range(4):
        _event(project, number)
    result = cli("projects", "errors", "list", "--session", "sess-1")
    assert result.returncode == 0, result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()[1:]] == ["1", "3"]


def test_it_prints_json_for_scripts(cli, project):
    _event(project, 1)
    result = cli("projects", "errors", "list", "--json")
    body = json.loads(result.stdout)
    assert body["errors"][0]["event_id"] == "cli-1"
    session = json.loads(cli("projects", "errors", "list", "--session", "sess-1", "--json").stdout)
    assert session["session_id"] == "sess-1" and len(session["errors"]) == 1


def test_it_shows_an_empty_list_plainly(cli):
    result = cli("projects", "errors", "list")
    assert result.returncode == 0 and result.stdout.strip() == "No errors."


def test_it_lists_and_sets_session_settings(cli, project):
    listing = cli("projects", "session-settings", "list")
    assert listing.returncode == 0, listing.stderr
    assert "error_message" in listing.stdout and "Sorry, something went wrong." in listing.stdout
    assert "AGENT_CRASH_TTS_MESSAGE=Sorry, something went wrong." in listing.stdout

    changed = cli("projects", "session-settings", "set", "error_message", "Sorry, try again.")
    assert changed.returncode == 0, changed.stderr
    assert "AGENT_CRASH_TTS_MESSAGE=Sorry, try again." in changed.stdout
    timeout = cli("projects", "session-settings", "set", "idle_timeout_seconds", "120")
    assert timeout.returncode == 0, timeout.stderr
    settings = SessionSettings.objects.get(project=project)
    assert (settings.error_message, settings.idle_timeout_seconds) == ("Sorry, try again.", 120)
    as_json = json.loads(cli("projects", "session-settings", "list", "--json").stdout)
    assert as_json["deploy_env"]["AGENT_IDLE_TIMEOUT_SECONDS"] == "120"


def test_it_lists_and_sets_the_event_retention(cli, project):
    assert re.search(
        r"^retention_days +30$", cli("projects", "session-settings", "list").stdout, re.M
    )
    changed = cli("projects", "session-settings", "set", "retention_days", "90")
    assert changed.returncode == 0, changed.stderr
    assert "retention_days updated; the next prune, within minutes, applies it." in changed.stdout
    project.refresh_from_db()
    assert project.retention_days == 90
    for bad in ("0", "401", "ninety"):
        refused = cli("projects", "session-settings", "set", "retention_days", bad)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith("error: VALIDATION_ERROR: ")
        assert any(
            line.strip().startswith("retention_days:") for line in refused.stderr.splitlines()
        )
    project.refresh_from_db()
    assert project.retention_days == 90


def test_it_prints_the_apis_code_message_and_details_and_exits_1(cli):
    result = cli("projects", "session-settings", "set", "error_message", "x" * 600)
    assert result.returncode == 1
    first, *details = result.stderr.splitlines()
    assert first.startswith("error: VALIDATION_ERROR: ")
    assert "(request req_" in first
    assert any(line.strip().startswith("error_message:") for line in details)
    assert result.stdout == ""


def test_it_reports_a_bad_key(cli):
    result = cli("projects", "errors", "list", env={"ERRORSINK_API_KEY": "es_00000000_nope"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAUTHORIZED: Invalid or revoked API key (request ")


def test_it_reports_a_missing_scope_and_another_project(cli, project, other_project):
    _, read_only = api_key_create(project=project, scopes="settings:read")
    scope = cli("projects", "errors", "list", env={"ERRORSINK_API_KEY": read_only})
    assert scope.returncode == 1 and scope.stderr.startswith("error: FORBIDDEN: ")
    elsewhere = cli("projects", "errors", "list", "--project", str(other_project.id))
    assert elsewhere.returncode == 1 and elsewhere.stderr.startswith("error: NOT_FOUND: ")


def test_it_takes_flags_instead_of_the_environment(cli, project, live_server_url):
    _event(project, 1)
    env = {"ERRORSINK_URL": "http://127.0.0.1:9", "ERRORSINK_API_KEY": "", "ERRORSINK_PROJECT": ""}
    result = cli("--url", live_server_url, "projects", "errors", "list",
                 "--api-key", cli.key, "--project", str(project.id), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "crash number 1" in result.stdout


def test_it_explains_a_refused_connection_and_exits_2(cli):
    result = cli(
        "projects", "errors", "list", env={"ERRORSINK_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert result.returncode == 2
    assert "cannot connect" in result.stderr and "connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_it_asks_for_missing_configuration(cli):
    result = cli("projects", "errors", "list", env={"ERRORSINK_API_KEY": ""})
    assert result.returncode == 2 and "ERRORSINK_API_KEY" in result.stderr


def test_it_neutralises_terminal_escapes_in_untrusted_text(cli, project):
    _event(project, 1, message="evil \x1b]0;pwned\x07 \x1b[2J text", session_id="s\x1b[31m")
    result = cli("projects", "errors", "list")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b" in result.stdout


# --- projects quality ------------------------------------------------------------------------


@pytest.fixture
def quality_cli(cli):
    """The same command from this checkout's source (`python -m`), whichever checkout the
    shared environment's console script was installed from."""

    def run(*args: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ERRORSINK_")}
        environ.update(ERRORSINK_URL=cli.url, ERRORSINK_API_KEY=cli.key,
                       ERRORSINK_PROJECT=cli.project)  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "errorsink_cli.main", *args], env=environ, cwd=CHECKOUT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    return run


@pytest.fixture
def quality_events(project):
    when = {"occurred_at": timezone.now() - timedelta(minutes=5)}
    for number, (session_id, build) in enumerate((("s1", "b1"), ("s2", "b2"), ("s3", "b2"))):
        _event(project, 100 + number, session_id=session_id, build_id=build, **when)
    _event(project, 110, session_id="s2", build_id="b2", kind=Event.WARNING, code="31002",
           details={"metrics": {"jitter_ms": 40}}, **when)  # fmt: skip
    busy = {"termination": {"cause": "USER_BUSY", "sip_code": 486}}
    _event(project, 111, session_id="s2", build_id="b2", kind=Event.TERMINATION,
           code="USER_BUSY", details=busy, **when)  # fmt: skip
    rollups_update()  # a reading
    rollups_update()  # past its horizon


def test_it_prints_quality_as_readable_tables(quality_cli, quality_events):
    result = quality_cli("projects", "quality", "--window", "1h")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Window 1h:" in out and "by minute" in out
    assert "Sessions: 3 active, 1 degraded (33.3%)" in out
    assert re.search(r"31002\s+HIGH_JITTER\s+1\s+1\s+33.3%\s+jitter_ms avg 40 p95 40", out)
    assert re.search(r"USER_BUSY\s+486\s+1\s+expected", out)
    assert re.search(r"AGENT_CHILD_CRASHED\s+AGENT_CHILD_CRASHED\s+3\s+3", out)
    assert re.search(r"b2\s+2\s+50.0%\s+1.00", out)


def test_it_prints_quality_json_for_one_build(quality_cli, quality_events):
    result = quality_cli("projects", "quality", "--build", "b1", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["window"]["name"] == "24h" and body["build_id"] == "b1"
    assert body["sessions"]["active"] == 1


def test_it_prints_quality_for_a_custom_range(quality_cli, quality_events):
    result = quality_cli("projects", "quality", "--since", "2h", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["window"]["name"] == "custom" and body["window"]["bucket"] == "minute"
    assert body["sessions"]["active"] == 3
    result = quality_cli("projects", "quality", "--since", "2026-12-01T00:00:00")
    assert result.returncode == 1 and "since: needs a time zone" in result.stderr


def test_it_reports_a_refused_build_with_its_details(quality_cli):
    result = quality_cli("projects", "quality", "--build", "x" * 201)
    assert result.returncode == 1
    assert "VALIDATION_ERROR" in result.stderr and "build_id:" in result.stderr


def test_it_filters_and_pages_errors(cli, project):
    for number in range(5):
        _event(project, number, code="TOOL_CALL_FAILED" if number % 2 else "AGENT_CHILD_CRASHED")
    _event(project, 9, received_at=timezone.now() - timedelta(days=2))
    result = cli("projects", "errors", "list", "--code", "tool", "--limit", "1", "--since", "1h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:-1]] == ["3"]
    cursor = re.fullmatch(r"\(more: add --cursor (\S+)\)", lines[-1]).group(1)
    rest = cli("projects", "errors", "list", "--code", "tool", "--since", "1h", "--cursor", cursor)
    assert [line.rsplit(" ", 1)[-1] for line in rest.stdout.splitlines()[1:]] == ["1"]
    everything = cli("projects", "errors", "list", "--limit", "100").stdout.splitlines()
    assert len(everything) == 1 + 6
    refused = cli("projects", "errors", "list", "--since", "last tuesday")
    assert refused.returncode == 1
    assert "since" in refused.stderr and "ISO 8601" in refused.stderr


def test_it_lists_issues_and_sets_their_status(cli, project):
    from tests.ingest_helpers import error_item, items_store

    items_store(
        [
            error_item(project.id, message=f"Handler failed after {n} ms", session_id=f"s{n}")
            for n in range(4)
        ]  # fmt: skip
        + [error_item(project.id, code="TOOL_CALL_FAILED", message="tool 'x' failed")]
    )
    result = cli("projects", "issues", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATUS", "EVENTS", "SESSIONS"]
    handler = next(line for line in lines if "AGENT_HANDLER_FAILED" in line)
    issue_id, status, events, sessions = handler.split()[:4]
    assert (status, events, sessions) == ("unresolved", "4", "4")
    done = cli("projects", "issues", "set", issue_id, "resolved")
    assert done.returncode == 0 and f"issue {issue_id} is resolved" in done.stdout
    remaining = json.loads(cli("projects", "issues", "list", "--json").stdout)["issues"]
    assert [issue["code"] for issue in remaining] == ["TOOL_CALL_FAILED"]
    resolved = cli("projects", "issues", "list", "--status", "resolved").stdout
    assert "AGENT_HANDLER_FAILED" in resolved
    assert cli("projects", "issues", "list", "--status", "ignored").stdout.strip() == (
        "No ignored issues.")  # fmt: skip


def test_it_lists_sessions_with_filters(cli, project):
    from errorsink.sessions.models import Session

    now = timezone.now()
    for n in range(3):
        Session.objects.create(project=project, session_id=f"call-{n}", build_id="v1",
                               first_seen=now - timedelta(minutes=10 - n), last_seen=now,
                               error_count=n, degraded=n == 1)  # fmt: skip
    result = cli("projects", "sessions", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["SESSION", "STARTED"]
    assert [line.split()[0] for line in lines[1:]] == ["call-2", "call-1", "call-0"]
    degraded = cli("projects", "sessions", "list", "--degraded").stdout.splitlines()
    assert [line.split()[0] for line in degraded[1:]] == ["call-1"]
    clean = cli("projects", "sessions", "list", "--no-has-errors").stdout.splitlines()
    assert [line.split()[0] for line in clean[1:]] == ["call-0"]
    assert cli("projects", "sessions", "list", "--q", "zzz").stdout.strip() == "No sessions."


@pytest.fixture
def turn_events(project):
    """Two turns of one session (one slow and interrupted) with their stages, as the OTLP
    receiver stores them, rolled up."""
    at = timezone.now() - timedelta(minutes=5)
    for number, (voice, interrupted) in enumerate(((900.0, False), (1800.0, True)), start=1):
        span = f"{number:016x}"
        _event(project, 200 + number, session_id="call-1", build_id="v3", kind=Event.TURN,
               code="turn", name=f"Turn {number}", occurred_at=at,
               details={"metrics": {"voice_to_voice_ms": voice},
                        "turn": {"trace_id": "a" * 32, "span_id": span, "number": number,
                                 "interrupted": interrupted}})  # fmt: skip
        _event(project, 210 + number, session_id="", build_id="v3", kind=Event.TURN,
               code="llm", occurred_at=at,
               details={"metrics": {"llm_ms": voice / 2},
                        "turn": {"trace_id": "a" * 32, "span_id": f"{number:08x}" * 2,
                                 "parent_span_id": span}})  # fmt: skip
    rollups_update()
    rollups_update()


def test_it_prints_latency_per_build_and_a_sessions_turns(quality_cli, turn_events):
    result = quality_cli("projects", "latency", "--window", "1h")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Turns: 2; voice-to-voice p50" in out and "over 2 measured" in out
    assert re.search(r"LLM first token\s+4\d\d ms\s+9\d\d ms\s+2", out)
    assert re.search(r"call-1\s+2\s+", out)  # the slowest turns name session and number
    result = quality_cli("projects", "latency", "--session", "call-1")
    assert result.returncode == 0, result.stderr
    assert re.search(r"2\s+\S+ \S+\s+1,800 ms\s+-\s+-\s+900 ms\s+-\s+slow; interrupted",
                     result.stdout)  # fmt: skip
    missing = quality_cli("projects", "latency", "--session", "nope")
    assert missing.returncode == 1 and "No such session" in missing.stderr
