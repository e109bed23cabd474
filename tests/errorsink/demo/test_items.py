"""The demo day's items: valid in the real formats, every kind covered, one build worse,
deterministic and idempotent per seed."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from errorsink.demo import BUILDS, REGRESSION, demo_items
from errorsink.ingest.formats import MAX_ITEM_BYTES, normalise_item
from errorsink.quality.metrics import METRIC_RANGES
from errorsink.quality.rollups import DEGRADED_CODE_PATTERN, NOT_DEGRADED_CODES
from errorsink.quality.selectors import EXPECTED_CAUSES

pytestmark = pytest.mark.pure

PROJECT = "6f1c6c8e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return demo_items(project_id=PROJECT, now=NOW, seed=1)


@pytest.fixture(scope="module")
def events(items):
    """Each item as the worker normalises it from the bytes it would take off the queue."""
    return [normalise_item(orjson.dumps(item)) for item in items]


def test_it_normalises_every_item_as_the_worker_would(items, events):
    assert len(events) == len(items) > 300
    assert all(len(orjson.dumps(item)) <= MAX_ITEM_BYTES for item in items)
    assert {event.project_id for event in events} == {PROJECT}
    assert len({event.event_id for event in events}) == len(events)
    assert all(event.session_id and event.build_id for event in events)


def test_it_spreads_the_sessions_over_the_past_day_oldest_first(items, events):
    times = [event.occurred_at for event in events]
    assert times == sorted(times)
    # From the start of the 24-hour quality window (hour buckets, the current one last), so
    # no session falls into the previous window.
    window_start = NOW.replace(minute=0) + timedelta(hours=1) - timedelta(hours=24)
    assert window_start <= times[0] < NOW - timedelta(hours=20)
    assert NOW - timedelta(hours=1) < times[-1] < NOW
    assert len({event.session_id for event in events}) == 300
    hours = {time.replace(minute=0, second=0, microsecond=0) for time in times}
    assert len(hours) >= 24


def test_an_hour_fills_the_one_hour_window_of_minute_buckets():
    items = demo_items(project_id=PROJECT, now=NOW + timedelta(seconds=20), hours=1, sessions=40)
    times = [item["occurred_at"] for item in items]
    assert min(times) >= "2026-11-23T08:31:00.000Z" and max(times) < "2026-11-23T09:30:20Z"


def test_it_uses_every_format_a_voice_session_produces(items):
    kinds = {(item["type"], item.get("name")) for item in items}
    assert kinds == {
        ("session_error", None),
        ("session_warning", None),
        ("session_end", None),
        ("turn", None),
        ("sdk_event", "telnyx.warning"),
        ("sdk_event", "telnyx.error"),
        ("sdk_event", "telnyx.notification"),
    }


def test_its_network_warnings_carry_valid_metrics(events):
    warnings = [event for event in events if event.kind == "warning"]
    network = [event for event in warnings if event.code in ("31001", "31002", "31003", "31004")]
    assert {event.code for event in network} == {"31001", "31002", "31003", "31004"}
    for event in network:
        metrics = event.details["metrics"]
        assert set(metrics) == set(METRIC_RANGES)
        for name, (low, high) in METRIC_RANGES.items():
            assert low <= metrics[name] <= high
    high_rtt = [event.details["metrics"]["rtt_ms"] for event in network if event.code == "31001"]
    low_mos = [event.details["metrics"]["mos"] for event in network if event.code == "31004"]
    assert sum(high_rtt) / len(high_rtt) > 300 and sum(low_mos) / len(low_mos) < 3.5
    # Connectivity and data-flow warnings come from the SDK, without metrics.
    assert {"32002", "33001", "33002", "33004", "33005"} <= {e.code for e in warnings}


def test_it_ends_sessions_every_way_with_their_sip_codes(events):
    ends = [event.details["termination"] for event in events if event.kind == "termination"]
    causes = {end["cause"] for end in ends}
    assert causes >= EXPECTED_CAUSES
    assert causes - EXPECTED_CAUSES == {"PURGE", "UNALLOCATED_NUMBER"}
    sip = {(end["cause"], end["sip_code"]) for end in ends}
    assert {("USER_BUSY", 486), ("NO_ANSWER", 480), ("CALL_REJECTED", 603),
            ("UNALLOCATED_NUMBER", 404), ("NORMAL_CLEARING", 200)} <= sip  # fmt: skip
    assert any(end["close_code"] == 1006 for end in ends)
    # One end per session at most: a hangup is reported by the runner or the SDK, not both.
    sessions = [event.session_id for event in events if event.kind == "termination"]
    assert len(sessions) == len(set(sessions))


def test_its_errors_are_runner_agent_and_sdk_errors_with_context(events):
    errors = [event for event in events if event.kind == "error"]
    codes = {event.code for event in errors}
    assert {"AGENT_HANDLER_FAILED", "WEBRTC_CONNECTION_FAILED", "PROVISIONING_FAILED"} <= codes
    assert {"45002", "48501", "42001"} <= codes
    sdk_errors = [event for event in errors if event.code.isdigit()]
    assert all("fatal" in event.details for event in sdk_errors)
    crashes = [event for event in errors if event.code.startswith("AGENT_")]
    assert all(event.message == "Sorry, something went wrong." for event in crashes)
    assert all(event.stack and event.customer_context["userId"] for event in crashes)
    assert {event.source for event in errors} >= {"agent", "runner", "provisioning", "client"}
    assert any(event.kind == "info" and event.code == "SESSION_IDLE_TIMEOUT" for event in events)


def test_its_builds_follow_one_another_and_one_is_worse(events):
    first_seen = {}
    for event in events:
        first_seen.setdefault(event.build_id, event.occurred_at)
    assert sorted(first_seen, key=first_seen.get) == [build.build_id for build in BUILDS]

    sessions, degraded, errors = defaultdict(set), defaultdict(set), defaultdict(int)
    for event in events:
        sessions[event.build_id].add(event.session_id)
        if (
            event.kind == "warning"
            and re.match(DEGRADED_CODE_PATTERN, event.code)
            and event.code not in NOT_DEGRADED_CODES
        ):
            degraded[event.build_id].add(event.session_id)
        errors[event.build_id] += event.kind == "error"
    share = {build: len(degraded[build]) / len(sessions[build]) for build in sessions}
    per_session = {build: errors[build] / len(sessions[build]) for build in sessions}
    others = [build.build_id for build in BUILDS if build.build_id != REGRESSION]
    assert all(len(sessions[build]) >= 50 for build in sessions)
    assert share[REGRESSION] > 2 * max(share[build] for build in others)
    assert per_session[REGRESSION] > 2 * max(per_session[build] for build in others)
    # The sound builds differ by little more than rounding: only the regression stands out.
    assert max(share[build] for build in others) - min(share[b] for b in others) < 0.06
    assert max(per_session[build] for build in others) - min(per_session[b] for b in others) < 0.1


def test_it_plays_the_projects_crash_message_and_idle_timeout():
    items = demo_items(project_id=PROJECT, now=NOW, crash_message="Oops, one moment please.",
                       idle_timeout_seconds=45)  # fmt: skip
    crashes = [item for item in items if item.get("code", "").startswith("AGENT_")]
    assert crashes and all(item["message"] == "Oops, one moment please." for item in crashes)
    idle = [item for item in items if item.get("code") == "SESSION_IDLE_TIMEOUT"]
    assert idle and all("45 s" in item["message"] for item in idle)


def test_it_gives_the_same_items_for_the_same_seed():
    assert demo_items(project_id=PROJECT, now=NOW, seed=5) == demo_items(
        project_id=PROJECT, now=NOW, seed=5
    )


def test_it_gives_other_sessions_and_event_ids_for_another_seed(items):
    other = demo_items(project_id=PROJECT, now=NOW, seed=2)
    assert not {item["event_id"] for item in items} & {item["event_id"] for item in other}
    assert not {item["session_id"] for item in items} & {item["session_id"] for item in other}


def test_a_session_keeps_its_event_ids_whatever_the_other_options():
    """So a second run with the same seed never stores a session twice."""
    few = demo_items(project_id=PROJECT, now=NOW, sessions=20, hours=6)
    later = demo_items(project_id=PROJECT, now=NOW + timedelta(minutes=7), sessions=40, hours=6)
    by_id = {item["event_id"]: item for item in later}
    assert {item["event_id"] for item in few} <= set(by_id)
    for item in few:
        assert {**item, "occurred_at": None} == {**by_id[item["event_id"]], "occurred_at": None}


def test_connected_calls_have_turns_and_the_regression_answers_slower(items):
    turns = [item for item in items if item["type"] == "turn" and item["part"] == "turn"]
    stages = [item for item in items if item["type"] == "turn" and item["part"] != "turn"]
    assert turns and len(stages) == 3 * len(turns)
    spans = {item["span_id"] for item in turns}
    assert all(stage["parent_span_id"] in spans for stage in stages)
    assert all("metrics" not in turn for turn in turns if turn["number"] == 1)  # the greeting
    voice = defaultdict(list)
    for turn in turns:
        if "metrics" in turn:
            voice[turn["build_id"]].append(turn["metrics"]["voice_to_voice_ms"])
    median = {build: statistics.median(values) for build, values in voice.items()}
    others = [value for build, value in median.items() if build != REGRESSION]
    assert median[REGRESSION] > 1.3 * max(others)
