"""The queue item for what an HTTP producer or the demo hands errorsink: one function, so every
entry point refuses what the worker would refuse, and what it accepts the worker stores."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from errorsink.ingest.formats import MAX_ITEM_BYTES, BadItem, derive_event_id, normalise


@dataclass(frozen=True)
class QueueItem:
    event_id: str
    payload: bytes  # the JSON the worker reads (docs/formats.md)


def queue_item(obj: object, project_id: str) -> QueueItem:
    """Validate ``obj`` as an item of ``project_id`` (the project comes from the route or the
    key, never from the body) and encode it; raises BadItem with the worker's reason.

    An item without an ``event_id`` is given the one derived from its content, so sending the
    same item twice stores it once."""
    if not isinstance(obj, dict):
        raise BadItem("item must be a JSON object")
    item = {**obj, "project_id": project_id}
    if item.get("event_id") is None:
        item["event_id"] = derive_event_id(item)
    normalised = normalise(item)
    try:
        payload = orjson.dumps(item)
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than can be serialised
        raise BadItem(f"item cannot be stored: {exc}") from None
    if len(payload) > MAX_ITEM_BYTES:
        raise BadItem(f"item is {len(payload)} bytes as JSON, over the limit of {MAX_ITEM_BYTES}")
    return QueueItem(normalised.event_id, payload)
