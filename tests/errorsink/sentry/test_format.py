"""Sentry events as the Sentry endpoints queue them (docs/sentry.md), normalised like every
other format: an event shaped as sentry-python sends it becomes one error."""

from __future__ import annotations

import orjson
import pytest

from errorsink.ingest.formats import BadItem, normalise_item
from errorsink.ingest.rows import event_grouping
from errorsink.issues.grouping import fingerprint_key

pytestmark = pytest.mark.pure

PROJECT = "7d1f0c2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f"
EXCEPTION_EVENT = {
    "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
    "timestamp": 1763800000.25,
    "platform": "python",
    "level": "error",
    "release": "agent@1.4.2",
    "tags": {"session_id": "call-123"},
    "user": {"id": "u_42"},
    "contexts": {"runtime": {"name": "CPython", "version": "3.12.1"}},
    "exception": {"values": [{
        "type": "KeyError", "value": "'order_id'", "mechanism": {"type": "generic",
                                                               "handled": False},
        "stacktrace": {"frames": [
            {"filename": "pipecat/pipeline.py", "function": "run", "lineno": 88,
             "in_app": False},
            {"filename": "agent/tools.py", "function": "lookup_order", "lineno": 12,
             "in_app": True},
            {"filename": "json/decoder.py", "function": "decode", "lineno": 3,
             "in_app": False},
        ]},
    }]},
}  # fmt: skip


def _item(event: dict, **fields) -> bytes:
    return orjson.dumps({"type": "sdk_event", "sdk": "sentry", "name": "event",
                         "project_id": PROJECT, "event_id": event.get("event_id"),
                         "event": event, **fields})  # fmt: skip


def test_an_exception_becomes_an_error_in_its_session_with_its_build():
    event = normalise_item(_item(EXCEPTION_EVENT))
    assert (event.kind, event.code, event.message) == ("error", "KeyError", "'order_id'")
    assert (event.session_id, event.build_id) == ("call-123", "agent@1.4.2")
    assert event.event_id == "9ec79c33ec9942ab8353589fcb2e04dc"
    assert event.occurred_at.isoformat() == "2025-11-22T08:26:40.250000+00:00"
    assert (event.severity, event.recoverable, event.source) == ("high", False, "agent")
    assert event.stack.splitlines()[2] == '  File "agent/tools.py", line 12, in lookup_order'
    assert event.customer_context["user"] == {"id": "u_42"}
    assert event.details["frames"][1] == {"file": "agent/tools.py", "function": "lookup_order",
                                          "line": 12, "in_app": True}  # fmt: skip


def test_without_a_fingerprint_the_type_and_innermost_in_app_frame_group_it():
    event = normalise_item(_item(EXCEPTION_EVENT))
    assert event.fingerprint == ["KeyError", "agent/tools.py in lookup_order"]
    other_value = {**EXCEPTION_EVENT, "exception": {"values": [
        {**EXCEPTION_EVENT["exception"]["values"][0], "value": "'customer'"}]}}  # fmt: skip
    assert event_grouping(event)[0] == event_grouping(normalise_item(_item(other_value)))[0]


def test_sentrys_own_fingerprint_wins():
    event = normalise_item(_item({**EXCEPTION_EVENT, "fingerprint": ["{{ default }}", "db"]}))
    assert event.fingerprint == ["{{ default }}", "db"]
    assert event_grouping(event)[0] != fingerprint_key(["KeyError"])


def test_a_message_becomes_an_error_coded_by_its_level():
    event = normalise_item(_item({"event_id": "a" * 32, "level": "warning",
                                  "message": "tool lookup_order slow", "timestamp":
                                  "2026-11-22T10:00:00Z",
                                  "tags": [["voice.session_id", "call-9"]]}))  # fmt: skip
    assert (event.kind, event.code, event.message, event.severity) == (
        "error",
        "WARNING",
        "tool lookup_order slow",
        "medium",
    )
    assert event.session_id == "call-9" and event.fingerprint is None and not event.stack


def test_a_bad_timestamp_is_refused_with_its_reason():
    with pytest.raises(BadItem, match="timestamp"):
        normalise_item(_item({**EXCEPTION_EVENT, "timestamp": True}))


@pytest.mark.parametrize(
    "tags",
    [[["session_id", "call-9"], [["x"], "y"]], [["session_id", "call-9"], [1, 2], [None, "z"]]],
)
def test_tag_pairs_of_any_shape_are_read_without_failing(tags):
    """Pairs whose name is not a string are no tags (a fuzzer found one made a 500)."""
    event = normalise_item(_item({**EXCEPTION_EVENT, "tags": tags}))
    assert event.session_id == "call-9"
