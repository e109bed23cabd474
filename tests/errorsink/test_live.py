"""The live-push message: plain JSON both ways, and nothing else taken for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from errorsink.live import (
    EventsStored,
    StoredEvent,
    epoch_us,
    group_name,
    moment_of,
    stored_error,
)


def test_it_round_trips_through_json():
    message = EventsStored.of([(7, "error"), (8, "warning")])
    encoded = json.loads(json.dumps(message.encode()))
    assert encoded == {"type": "events.stored", "events": [[7, "error"], [8, "warning"]]}
    assert EventsStored.decode(encoded) == message
    assert message.events == (StoredEvent(7, "error"), StoredEvent(8, "warning"))


def test_an_error_carries_its_hints_through_json_exactly():
    arrival = datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=UTC)
    message = EventsStored.of([stored_error(7, "AGENT_CHILD_CRASHED", "agent", epoch_us(arrival)),
                               (8, "warning")])  # fmt: skip
    decoded = EventsStored.decode(json.loads(json.dumps(message.encode())))
    error, warning = decoded.events
    assert (error.pk, error.kind, error.code, error.source) == (7, "error", "AGENT_CHILD_CRASHED",
                                                               "agent")  # fmt: skip
    assert moment_of(error.received_us) == arrival
    assert error.hinted and not warning.hinted


@pytest.mark.parametrize(
    "message",
    [
        {"type": "other", "events": []},
        {"type": "events.stored"},
        {"type": "events.stored", "events": [[1]]},
        {"type": "events.stored", "events": [["1", "error"]]},
        {"type": "events.stored", "events": [[1, None]]},
        {"type": "events.stored", "events": 5},
        {"type": "events.stored", "events": [[1, "error", "CODE", "agent"]]},
        {"type": "events.stored", "events": [[1, "error", "CODE", None, 5]]},
        {"type": "events.stored", "events": [[1, "error", "CODE", "agent", 1.5]]},
        {"type": "events.stored", "events": [[1, "error", "CODE", "agent", 5, "more"]]},
    ],
)
def test_it_refuses_anything_else(message):
    with pytest.raises(ValueError):
        EventsStored.decode(message)


def test_it_names_one_group_per_project():
    assert group_name("0b8e") == "project.0b8e" != group_name("other")
