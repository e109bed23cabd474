"""The live-push message: plain JSON both ways, and nothing else taken for it."""

from __future__ import annotations

import json

import pytest

from errorsink.live import EventsStored, StoredEvent, group_name


def test_it_round_trips_through_json():
    message = EventsStored.of([(7, "error"), (8, "warning")])
    encoded = json.loads(json.dumps(message.encode()))
    assert encoded == {"type": "events.stored", "events": [[7, "error"], [8, "warning"]]}
    assert EventsStored.decode(encoded) == message
    assert message.events == (StoredEvent(7, "error"), StoredEvent(8, "warning"))


@pytest.mark.parametrize(
    "message",
    [
        {"type": "other", "events": []},
        {"type": "events.stored"},
        {"type": "events.stored", "events": [[1]]},
        {"type": "events.stored", "events": [["1", "error"]]},
        {"type": "events.stored", "events": [[1, None]]},
        {"type": "events.stored", "events": 5},
    ],
)
def test_it_refuses_anything_else(message):
    with pytest.raises(ValueError):
        EventsStored.decode(message)


def test_it_names_one_group_per_project():
    assert group_name("0b8e") == "project.0b8e" != group_name("other")
