"""The `errorsink` command: the HTTP API (docs/api.md) for terminals and scripts.

Configuration: --url/--api-key/--project, else ERRORSINK_URL (default http://localhost:8000),
ERRORSINK_API_KEY and ERRORSINK_PROJECT. Exit status: 0 success, 1 the API refused (its code
and message on stderr), 2 a usage or connection problem.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import httpx

DEFAULT_URL = "http://localhost:8000"
MESSAGE_WIDTH = 60
SETTINGS_FIELDS = ("error_message", "idle_timeout_seconds", "retention_days")
NUMBER_FIELDS = ("idle_timeout_seconds", "retention_days")
QUALITY_WINDOWS = ("1h", "24h", "7d", "30d")
ISSUE_STATUSES = ("unresolved", "resolved", "ignored")
ERROR_COLUMNS = ["TIME (UTC)", "CODE", "SOURCE", "OUTCOME", "SESSION", "MESSAGE"]
ISSUE_COLUMNS = ["ID", "STATUS", "EVENTS", "SESSIONS", "LAST SEEN (UTC)", "CODE", "TITLE"]
SESSION_COLUMNS = ["SESSION", "STARTED (UTC)", "EVENTS", "ERRORS", "ENDED BY", "QUALITY", "BUILD"]


class CliError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        args.handler(_client(args), args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:  # `errorsink ... | head`
        return 0
    return 0


# ---------------------------------------------------------------------------------------------
# Commands


def errors_list(client: Client, args: argparse.Namespace) -> None:
    project = quote(client.project, safe="")
    if args.session:
        session = quote(args.session, safe="")
        body = client.request("GET", f"/projects/{project}/sessions/{session}/errors")
    else:
        query = _query(code=args.code, q=args.q, build_id=args.build, since=args.since,
                       limit=args.limit, cursor=args.cursor)  # fmt: skip
        body = client.request("GET", f"/projects/{project}/session-errors{query}")
    empty = "No errors." if not args.session else f"No errors in session {_clean(args.session)}."
    shown = _print_list(args, body, "errors", empty, ERROR_COLUMNS, lambda event: [
        _time(event.get("occurred_at", "")), event.get("code", ""), event.get("source", ""),
        _outcome(event.get("recoverable")), event.get("session_id") or "-",
        _shorten(event.get("message", ""), MESSAGE_WIDTH),
    ])  # fmt: skip
    if shown and body.get("truncated"):
        print(f"(only the first {shown} errors of this session are shown)")


def issues_list(client: Client, args: argparse.Namespace) -> None:
    query = _query(status=args.status, sort=args.sort, q=args.q, code=args.code,
                   limit=args.limit, cursor=args.cursor)  # fmt: skip
    body = client.request("GET", f"/projects/{quote(client.project, safe='')}/issues{query}")
    empty = f"No {args.status} issues." if args.status != "all" else "No issues."
    _print_list(args, body, "issues", empty, ISSUE_COLUMNS, lambda issue: [
        str(issue["id"]), issue["status"] + (" (regressed)" if issue.get("regressed") else ""),
        str(issue["count"]), str(issue["sessions"]), _time(issue["last_seen"]), issue["code"],
        _shorten(issue["title"], MESSAGE_WIDTH),
    ])  # fmt: skip


def issue_status_set(client: Client, args: argparse.Namespace) -> None:
    project = quote(client.project, safe="")
    body = client.request(
        "PATCH", f"/projects/{project}/issues/{args.issue_id}", json={"status": args.status}
    )
    if args.json:
        _print_json(body)
        return
    print(f"issue {body['id']} is {body['status']}: {_shorten(body['title'], MESSAGE_WIDTH)}")


def sessions_list(client: Client, args: argparse.Namespace) -> None:
    query = _query(q=args.q, build_id=args.build, end_cause=args.end_cause,
                   degraded=_flag(args.degraded), has_errors=_flag(args.has_errors),
                   limit=args.limit, cursor=args.cursor)  # fmt: skip
    body = client.request("GET", f"/projects/{quote(client.project, safe='')}/sessions{query}")
    _print_list(args, body, "sessions", "No sessions.", SESSION_COLUMNS, lambda session: [
        _shorten(session["session_id"], 40), _time(session["first_seen"]),
        str(session["event_count"]), str(session["error_count"]), session["end_cause"] or "-",
        "degraded" if session["degraded"] else "-", session["build_id"] or "-",
    ])  # fmt: skip


def _print_list(args: argparse.Namespace, body: dict, key: str, empty: str,
                headers: list[str], row) -> int:  # fmt: skip
    """A list response as the API's JSON, or a table (or ``empty``) and where more pages are;
    returns how many rows it printed."""
    if args.json:
        _print_json(body)
        return 0
    items = body.get(key, [])
    if not items:
        print(empty)
        return 0
    _print_table(headers, [row(item) for item in items])
    if body.get("next"):
        print(f"(more: add --cursor {body['next']})")
    return len(items)


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def _query(**params: object) -> str:
    """The query string of the options given; "" when none is."""
    given = {key: value for key, value in params.items() if value not in (None, "")}
    return f"?{urlencode(given)}" if given else ""


def settings_list(client: Client, args: argparse.Namespace) -> None:
    body = client.request("GET", f"/projects/{quote(client.project, safe='')}/session-settings")
    if args.json:
        _print_json(body)
        return
    _print_settings(body)


def settings_set(client: Client, args: argparse.Namespace) -> None:
    value: object = args.value
    if args.field in NUMBER_FIELDS and args.value.strip().removeprefix("-").isdigit():
        value = int(args.value)
    body = client.request(
        "PATCH",
        f"/projects/{quote(client.project, safe='')}/session-settings",
        json={args.field: value},
    )
    if args.json:
        _print_json(body)
        return
    if args.field == "retention_days":
        print(f"{args.field} updated; the next prune, within minutes, applies it.")
    else:
        print(f"{args.field} updated; the next deploy applies it.")
    _print_settings(body)


def quality_show(client: Client, args: argparse.Namespace) -> None:
    query = {"window": args.window, **({"build_id": args.build} if args.build else {})}
    if args.since or args.until:
        until = _moment(args.until) if args.until else _iso_now()
        query.update(window="custom", since=_moment(args.since or ""), until=until)
    body = client.request(
        "GET", f"/projects/{quote(client.project, safe='')}/quality?{urlencode(query)}"
    )
    if args.json:
        _print_json(body)
        return
    _print_quality_head(body)
    _print_section("warnings", ["WARNING", "NAME", "COUNT", "SESSIONS", "SHARE", "METRICS"], [
        [w["code"], w["name"], w["count"], w["sessions"], _percent(w["session_share"]),
         _metrics_text(w.get("metrics") or {})]
        for w in body.get("warnings", [])
    ])  # fmt: skip
    _print_section("terminations", ["CAUSE", "SIP", "SESSIONS", "OUTCOME"], [
        [t["cause"], t["sip_code"] or "-", t["sessions"],
         "expected" if t["expected"] else "failure"]
        for t in body.get("terminations", [])
    ])  # fmt: skip
    _print_section("errors", ["ERROR", "NAME", "COUNT", "SESSIONS"], [
        [e["code"], e["name"], e["count"], e["sessions"]] for e in body.get("errors", [])
    ])  # fmt: skip
    _print_section("builds", ["BUILD", "SESSIONS", "DEGRADED", "ERRORS/SESSION"], [
        [b["build_id"] or "(none)", b["sessions"], _percent(b["degraded_share"]),
         f"{b['errors_per_session']:.2f}"]
        for b in body.get("builds", [])
    ])  # fmt: skip


_STAGES = (("end_of_turn_ms", "end of turn"), ("stt_ms", "STT"), ("llm_ms", "LLM first token"),
           ("tts_ms", "TTS first byte"))  # fmt: skip


def latency_show(client: Client, args: argparse.Namespace) -> None:
    project = quote(client.project, safe="")
    if args.session:
        body = client.request("GET", f"/projects/{project}/sessions/{quote(args.session)}/turns")
        if args.json:
            _print_json(body)
        else:
            _print_turns(body)
        return
    query = {"window": args.window, **({"build_id": args.build} if args.build else {})}
    body = client.request("GET", f"/projects/{project}/latency?{urlencode(query)}")
    if args.json:
        _print_json(body)
        return
    _print_quality_head(body, sessions=False)
    voice = body.get("voice_to_voice", {})
    print(f"Turns: {body.get('turns', 0)}; voice-to-voice p50 {_ms(voice.get('p50'))}, "
          f"p95 {_ms(voice.get('p95'))} over {voice.get('count', 0)} measured")  # fmt: skip
    stages = body.get("stages", {})
    _print_section("stages", ["STAGE", "P50", "P95", "VALUES"], [
        [label, _ms(stages[name]["p50"]), _ms(stages[name]["p95"]), stages[name]["count"]]
        for name, label in _STAGES if stages.get(name, {}).get("count")
    ])  # fmt: skip
    _print_section("builds", ["BUILD", "TURNS", "V2V P50", "V2V P95", "SLOWER THAN"], [
        [b["build_id"] or "(none)", b["turns"], _ms(b["voice_to_voice"]["p50"]),
         _ms(b["voice_to_voice"]["p95"]), b["slower_than"] or "-"]
        for b in body.get("builds", [])
    ])  # fmt: skip
    _print_section("slow turns", ["VOICE-TO-VOICE", "SESSION", "TURN", "STARTED", "BUILD"], [
        [_ms(t["voice_to_voice_ms"]), t["session_id"], t["number"] or "-",
         _time(t["started_at"]), t["build_id"] or "-"]
        for t in body.get("slowest", [])
    ])  # fmt: skip


def _print_turns(body: dict) -> None:
    print(f"Session {_clean(str(body.get('session_id')))}: {len(body.get('turns', []))} turns"
          + (" (cut: the session has more events than are read)" if body.get("truncated")
             else ""))  # fmt: skip
    _print_section("turns", ["TURN", "STARTED", "VOICE-TO-VOICE", "EOT", "STT", "LLM", "TTS",
                             "NOTE"], [
        [t["number"] or "-", _time(t["started_at"]), _ms(t["voice_to_voice_ms"]),
         *[_ms(t[name]) for name, _ in _STAGES], _turn_note(t)]
        for t in body.get("turns", [])
    ])  # fmt: skip


def _turn_note(turn: dict) -> str:
    notes = ["slow"] if turn.get("slow") else []
    notes += ["interrupted"] if turn.get("interrupted") else []
    notes += [f"{name} left out: {why}" for name, why in (turn.get("problems") or {}).items()]
    return "; ".join(notes) or "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


# ---------------------------------------------------------------------------------------------
# HTTP


class Client:
    def __init__(self, url: str, api_key: str | None, project: str | None) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self.url, self.api_key, self._project = url, api_key, project

    @property
    def project(self) -> str:
        if not self._project:
            raise CliError("no project: pass --project ID or set ERRORSINK_PROJECT", 2)
        return self._project

    def request(self, method: str, path: str, json: object = None) -> dict:
        if not self.api_key:
            raise CliError("no API key: pass --api-key KEY or set ERRORSINK_API_KEY", 2)
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": "errorsink-cli",
            "Accept": "application/json",
        }
        try:
            response = httpx.request(
                method, self.base + path, headers=headers, json=json, timeout=15.0
            )
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot connect to {self.url} ({_reason(exc)}); is errorsink running there? "
                "Set ERRORSINK_URL or --url.",
                2,
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"{self.url} did not answer within 15 seconds", 2) from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.url} failed: {exc}", 2) from None
        return _body_or_raise(response)


def _body_or_raise(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    request_id = response.headers.get("X-Request-Id", "")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = _shorten(response.text, 200) or response.reason_phrase
        raise CliError(f"HTTP {response.status_code}: {text} (request {request_id})", 1)
    message = (
        f"{_clean(str(error.get('code', 'ERROR')))}: {_clean(str(error.get('message', '')))} "
        f"(request {_clean(str(error.get('requestId') or request_id))})"
    )
    details = error.get("details")
    if isinstance(details, dict):
        for field, problem in details.items():
            message += f"\n  {_clean(str(field))}: {_clean(str(problem))}"
    if response.status_code == 429 and response.headers.get("Retry-After"):
        message += f"\n  retry after {_clean(response.headers['Retry-After'])} seconds"
    raise CliError(message, 1)


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    return "connection refused" if "refused" in text else str(exc) or type(exc).__name__


def _client(args: argparse.Namespace) -> Client:
    return Client(
        url=getattr(args, "url", None) or os.environ.get("ERRORSINK_URL") or DEFAULT_URL,
        api_key=getattr(args, "api_key", None) or os.environ.get("ERRORSINK_API_KEY"),
        project=getattr(args, "project", None) or os.environ.get("ERRORSINK_PROJECT"),
    )


# ---------------------------------------------------------------------------------------------
# Output


def _clean(text: str) -> str:
    """Untrusted text made safe for a terminal: control characters (escape sequences
    included) shown as \\xNN instead of being interpreted."""
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) in ("Cc", "Cf") else char for char in text
    )


def _shorten(text: str, width: int) -> str:
    text = " ".join(_clean(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _time(value: str) -> str:
    # "2026-06-19T12:00:00.123Z" -> "2026-06-19 12:00:00": enough to read, same width always.
    return value[:19].replace("T", " ") if value else "-"


def _outcome(recoverable: object) -> str:
    return {True: "recoverable", False: "fatal"}.get(recoverable, "unknown")


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    cells = [[_clean(str(cell)) for cell in row] for row in rows]
    widths = [max(len(headers[i]), *(len(row[i]) for row in cells)) for i in range(len(headers))]
    for row in [headers, *cells]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _print_settings(body: dict) -> None:
    rows = [[field, _shorten(str(body.get(field, "")), 200)] for field in SETTINGS_FIELDS]
    rows.append(["updated_at", _time(str(body.get("updated_at", "")))])
    _print_table(["SETTING", "VALUE"], rows)
    env = body.get("deploy_env") or {}
    if env:
        print("\nNext deploy receives:")
        for name, value in env.items():
            print(f"  {_clean(str(name))}={_clean(str(value))}")


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _metrics_text(metrics: dict) -> str:
    return ", ".join(
        f"{name} avg {values['avg']:.4g} p95 {values['p95']:.4g}"
        for name, values in sorted(metrics.items())
    )


_DURATION = re.compile(r"(\d+)([mhd])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _moment(text: str) -> str:
    """A duration (15m, 24h, 7d) as the ISO time that long ago; anything else as given, for the
    server to check."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        return text
    ago = timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})
    return (datetime.now(UTC) - ago).isoformat()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def _print_quality_head(body: dict, *, sessions: bool = True) -> None:
    window = body.get("window", {})
    build = f", build {_clean(str(body['build_id']))}" if body.get("build_id") else ""
    print(f"Window {window.get('name')}: {_time(window.get('start', ''))} to "
          f"{_time(window.get('end', ''))} UTC, by {window.get('bucket')}{build}")  # fmt: skip
    if not sessions:
        return
    now, before = body.get("sessions", {}), body.get("previous", {}).get("sessions", {})
    print(f"Sessions: {now.get('active', 0)} active, {now.get('degraded', 0)} degraded "
          f"({_percent(now.get('degraded_share', 0))}); previous window "
          f"{before.get('active', 0)} active, {before.get('degraded', 0)} degraded "
          f"({_percent(before.get('degraded_share', 0))})")  # fmt: skip


def _print_section(name: str, headers: list[str], rows: list[list]) -> None:
    print()
    if rows:
        _print_table(headers, rows)
    else:
        print(f"No {name}.")


def _print_json(body: object) -> None:
    print(json.dumps(body, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# Arguments


def _connection_options(defaults: bool) -> argparse.ArgumentParser:
    # The same options on the top level and on every command, so they can go anywhere.
    parent = argparse.ArgumentParser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--url", default=default, help=f"errorsink URL (ERRORSINK_URL, {DEFAULT_URL})"
    )
    group.add_argument("--api-key", default=default, help="API key (ERRORSINK_API_KEY)")
    group.add_argument("--project", default=default, help="project id (ERRORSINK_PROJECT)")
    return parent


def _paging_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--limit", type=int, metavar="N", help="page size, 1 to 100 (20)")
    command.add_argument("--cursor", help="the next page, as the previous one printed it")
    command.add_argument("--json", action="store_true", help="print the API's JSON")


def _parser() -> argparse.ArgumentParser:
    leaf = _connection_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="errorsink",
        description="Read errors and call quality, and change session settings, of an "
        "errorsink project.",
        parents=[_connection_options(defaults=True)],
    )
    top = parser.add_subparsers(title="commands", metavar="projects")
    projects = top.add_parser("projects", help="a project's errors, quality and session settings")
    groups = projects.add_subparsers(
        title="commands", metavar="{errors,issues,sessions,session-settings,quality,latency}"
    )

    errors = groups.add_parser("errors", help="the project's errors")
    errors_cmds = errors.add_subparsers(title="commands", metavar="list")
    listing = errors_cmds.add_parser(
        "list",
        parents=[leaf],
        help="errors, newest first (the last 20 unless filtered), or one session's",
    )
    listing.add_argument("--session", metavar="SESSION_ID", help="only this session's errors")
    listing.add_argument("--code", help="code prefix, case-insensitive")
    listing.add_argument("--q", metavar="WORDS", help="words in the message")
    listing.add_argument("--build", metavar="BUILD_ID", help="only this build")
    listing.add_argument("--since", metavar="T", help="ISO 8601 time or a duration: 15m, 24h, 7d")
    _paging_options(listing)
    listing.set_defaults(handler=errors_list)

    issues = groups.add_parser("issues", help="errors grouped into issues")
    issues_cmds = issues.add_subparsers(title="commands", metavar="{list,set}")
    issue_listing = issues_cmds.add_parser(
        "list", parents=[leaf], help="issues, newest activity first"
    )
    issue_listing.add_argument("--status", choices=ISSUE_STATUSES + ("all",),
                               default="unresolved", help="(default unresolved)")  # fmt: skip
    issue_listing.add_argument("--sort", choices=("last_seen", "count", "sessions"))
    issue_listing.add_argument("--code", help="code prefix, case-insensitive")
    issue_listing.add_argument("--q", metavar="WORDS", help="words in the title")
    _paging_options(issue_listing)
    issue_listing.set_defaults(handler=issues_list)
    issue_set = issues_cmds.add_parser("set", parents=[leaf], help="resolve, ignore or reopen")
    issue_set.add_argument("issue_id", type=int, metavar="ISSUE_ID")
    issue_set.add_argument("status", choices=ISSUE_STATUSES)
    issue_set.add_argument("--json", action="store_true", help="print the API's JSON")
    issue_set.set_defaults(handler=issue_status_set)

    sessions = groups.add_parser("sessions", help="the project's sessions")
    sessions_cmds = sessions.add_subparsers(title="commands", metavar="list")
    session_listing = sessions_cmds.add_parser(
        "list", parents=[leaf], help="sessions, most recently started first"
    )
    session_listing.add_argument("--q", metavar="PREFIX", help="session id prefix")
    session_listing.add_argument("--build", metavar="BUILD_ID", help="only this build")
    session_listing.add_argument("--end-cause", metavar="CAUSE", help="e.g. NORMAL_CLEARING; none")
    session_listing.add_argument(
        "--degraded",
        action=argparse.BooleanOptionalAction,
        help="only degraded sessions (--no-degraded: only others)",
    )
    session_listing.add_argument(
        "--has-errors",
        action=argparse.BooleanOptionalAction,
        help="only sessions with errors (--no-has-errors: without)",
    )
    _paging_options(session_listing)
    session_listing.set_defaults(handler=sessions_list)

    settings = groups.add_parser(
        "session-settings", help="crash message, idle timeout and event retention"
    )
    settings_cmds = settings.add_subparsers(title="commands", metavar="{list,set}")
    show = settings_cmds.add_parser("list", parents=[leaf], help="the current settings")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    show.set_defaults(handler=settings_list)
    change = settings_cmds.add_parser("set", parents=[leaf], help="change one setting")
    change.add_argument("field", choices=SETTINGS_FIELDS)
    change.add_argument("value")
    change.add_argument("--json", action="store_true", help="print the API's JSON")
    change.set_defaults(handler=settings_set)

    quality = groups.add_parser(
        "quality", parents=[leaf], help="call quality: degraded sessions, warnings, builds"
    )
    quality.add_argument(
        "--window", choices=QUALITY_WINDOWS, default="24h", help="how far back (default 24h)"
    )
    quality.add_argument(
        "--since",
        metavar="T",
        help="a custom range from T (ISO 8601 with a zone, or 15m, 24h, 7d ago)",
    )
    quality.add_argument("--until", metavar="T", help="... to T (default now)")  # fmt: skip
    quality.add_argument("--build", metavar="BUILD_ID", help="only events of this build")
    quality.add_argument("--json", action="store_true", help="print the API's JSON")
    quality.set_defaults(handler=quality_show)

    latency = groups.add_parser(
        "latency", parents=[leaf],
        help="voice turns: voice-to-voice and stage latency per build, or one session's turns",
    )  # fmt: skip
    latency.add_argument(
        "--window", choices=QUALITY_WINDOWS, default="24h", help="how far back (default 24h)"
    )
    latency.add_argument("--build", metavar="BUILD_ID", help="only turns of this build")
    latency.add_argument("--session", metavar="SESSION_ID", help="this session's turns instead")
    latency.add_argument("--json", action="store_true", help="print the API's JSON")
    latency.set_defaults(handler=latency_show)
    return parser


if __name__ == "__main__":
    sys.exit(main())
