"""The quality figures recounted straight from raw events, by the definitions of
errorsink/quality/selectors.py, for tests to compare with what the rollups give."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import datetime, timedelta

from errorsink.catalog import lookup
from errorsink.quality.metrics import METRIC_RANGES
from errorsink.quality.models import MINUTE
from errorsink.quality.rollups import DEGRADED_CODE_PATTERN, NOT_DEGRADED_CODES
from errorsink.quality.selectors import BUCKET_NAMES, EXPECTED_CAUSES, quality_window
from errorsink.quality.sketches import RELATIVE_ACCURACY
from errorsink.sessions.models import Event, Session


def recount(*, project_id, window: str, build_id: str | None, now: datetime) -> dict:
    span = quality_window(window, now=now)
    events = events_as_counted(project_id)
    if build_id is not None:
        events = [e for e in events if e.build_id == build_id]
    current = [e for e in events if span.start <= e.occurred_at < span.end]
    previous = [e for e in events if span.previous_start <= e.occurred_at < span.start]
    sessions = _sessions(current)
    return {
        "project_id": str(project_id),
        "window": {
            "name": window,
            "start": span.start,
            "end": span.end,
            "bucket": BUCKET_NAMES[span.span],
        },  # fmt: skip
        "build_id": build_id,
        "sessions": sessions,
        "previous": {
            "start": span.previous_start,
            "end": span.start,
            "sessions": _sessions(previous),
        },  # fmt: skip
        "warnings": _warnings(current, sessions["active"], span.span),
        "terminations": _terminations(current),
        "errors": _errors(current),
        "builds": _builds(current, span.span),
    }


def events_as_counted(project_id) -> list[Event]:
    """The project's events, each with the build the figures count it under: its session's
    (the session row's build), or its own when it has no session row."""
    sessions = Session.objects.filter(project_id=project_id)
    builds = dict(sessions.values_list("session_id", "build_id"))
    events = list(Event.objects.filter(project_id=project_id))
    for event in events:
        if event.session_id in builds:
            event.build_id = builds[event.session_id]
    return events


def _degraded(event: Event) -> bool:
    return (
        event.kind == "warning"
        and bool(re.fullmatch(DEGRADED_CODE_PATTERN[1:-1], event.code))
        and event.code not in NOT_DEGRADED_CODES
    )


def _sessions(events: list[Event]) -> dict:
    active = {e.session_id for e in events if e.session_id}
    degraded = {e.session_id for e in events if e.session_id and _degraded(e)}
    share = len(degraded) / len(active) if active else 0.0
    return {"active": len(active), "degraded": len(degraded), "degraded_share": share}


def _bucket(moment: datetime, span: str) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if span == MINUTE else floor.replace(minute=0)


def _metric_values(events: list[Event]) -> dict[str, list[float]]:
    values = defaultdict(list)
    for event in events:
        details = event.details if isinstance(event.details, dict) else {}
        metrics = details.get("metrics")
        if not isinstance(metrics, dict):
            continue
        for name, (low, high) in METRIC_RANGES.items():
            value = metrics.get(name)
            if type(value) in (int, float) and low <= value <= high:
                values[name].append(float(value))
    return values


def _metrics(events: list[Event]) -> dict:
    result = {}
    for name, values in _metric_values(events).items():
        ordered = sorted(values)
        rank = math.ceil(0.95 * len(ordered))
        result[name] = {"count": len(ordered), "avg": sum(ordered) / len(ordered),
                        "p95": ordered[rank - 1]}  # fmt: skip
    return result


def _warnings(events: list[Event], active: int, span: str) -> list[dict]:
    by_code = defaultdict(list)
    for event in events:
        if event.kind == "warning":
            by_code[event.code].append(event)
    rows = []
    for code, group in by_code.items():
        sessions = len({e.session_id for e in group if e.session_id})
        info = lookup(code, sdk="telnyx")
        buckets = defaultdict(list)
        for event in group:
            buckets[_bucket(event.occurred_at, span)].append(event)
        series = [
            {"start": start, "count": len(items),
             "sessions": len({e.session_id for e in items if e.session_id})}
            for start, items in sorted(buckets.items())
        ]  # fmt: skip
        rows.append({"code": code, "name": info.name if info else code, "count": len(group),
                     "sessions": sessions, "session_share": sessions / active if active else 0.0,
                     "metrics": _metrics(group), "series": series})  # fmt: skip
    return sorted(rows, key=lambda row: (-row["count"], row["code"]))


def _errors(events: list[Event]) -> list[dict]:
    by_code = defaultdict(list)
    for event in events:
        if event.kind == "error":
            by_code[event.code].append(event)
    rows = []
    for code, group in by_code.items():
        info = lookup(code)
        rows.append({"code": code, "name": info.name if info else code, "count": len(group),
                     "sessions": len({e.session_id for e in group if e.session_id})})  # fmt: skip
    return sorted(rows, key=lambda row: (-row["count"], row["code"]))


def sip_code_of(event: Event) -> int | None:
    details = event.details if isinstance(event.details, dict) else {}
    termination = details.get("termination")
    value = termination.get("sip_code") if isinstance(termination, dict) else None
    if type(value) in (int, float) and 100 <= value <= 699 and value == int(value):
        return int(value)
    return None


def _terminations(events: list[Event]) -> list[dict]:
    by_key = defaultdict(list)
    for event in events:
        if event.kind == "termination":
            by_key[(event.code, sip_code_of(event))].append(event)
    rows = [
        {"cause": cause, "sip_code": sip, "count": len(group),
         "sessions": len({e.session_id for e in group if e.session_id}),
         "expected": cause in EXPECTED_CAUSES}
        for (cause, sip), group in by_key.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (-row["sessions"], row["cause"], row["sip_code"] or 0))


def _builds(events: list[Event], span: str) -> list[dict]:
    by_build = defaultdict(list)
    for event in events:
        by_build[event.build_id].append(event)
    rows = []
    for build, group in by_build.items():
        sessions = _sessions(group)
        errors = sum(e.kind == "error" for e in group)
        if not sessions["active"] and not errors:
            continue
        first_seen = min(_bucket(e.occurred_at, span) for e in group)
        rows.append({"build_id": build, "first_seen": first_seen, "sessions": sessions["active"],
                     "degraded": sessions["degraded"],
                     "degraded_share": sessions["degraded_share"], "errors": errors,
                     "errors_per_session": errors / sessions["active"]
                     if sessions["active"] else 0.0})  # fmt: skip
    return sorted(rows, key=lambda row: (-row["sessions"], row["build_id"]))


def without_averages(figures: dict) -> tuple[dict, list[tuple[float, float]]]:
    """The figures with each metric's ``avg`` and ``p95`` taken out (floating-point sums differ
    in their last bits with the order of addition; p95 comes from a DDSketch), and those values
    in a stable order."""
    taken = []
    for warning in figures["warnings"]:
        for name in sorted(warning["metrics"]):
            metric = warning["metrics"][name]
            taken.append((metric.pop("avg"), metric.pop("p95")))
    return figures, taken


def assert_same_figures(actual: dict, expected: dict) -> None:
    """The figures' counts equal (sessions exact: these tests stay under 4,096), averages
    equal to the last bits, p95 within the DDSketch's 1 %."""
    actual = {key: value for key, value in actual.items() if key != "accuracy"}
    actual, actual_values = without_averages(actual)
    expected, expected_values = without_averages(expected)
    assert actual == expected
    assert len(actual_values) == len(expected_values)
    for (avg, p95), (want_avg, want_p95) in zip(actual_values, expected_values, strict=True):
        assert math.isclose(avg, want_avg, rel_tol=1e-9, abs_tol=1e-9)
        assert abs(p95 - want_p95) <= RELATIVE_ACCURACY * abs(want_p95) + 1e-9, (p95, want_p95)


def minutes_ago(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)
