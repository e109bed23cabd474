"""A Sentry event made into errorsink's queue item, cut to fit (docs/sentry.md).

errorsink keeps what it shows: the exception chain and its frames, the message, level, release,
tags, user and contexts. Breadcrumbs, local variables, source lines and the like are dropped.
What is left is cut the way Sentry and GlitchTip trim rather than refuse: strings past
STRING_MAX (tag values past TAG_VALUE_MAX) are shortened, objects nested past DEPTH_MAX become a
marker, and if the item is still over the queue's limit the outermost frames go, then the user
and contexts. So an event the door accepts always fits the queue item the worker reads; one
that cannot be made to fit is refused at the door, never dead-lettered later.

Every shape is read defensively: an event whose ``exception`` is a string or a number passes
through untouched here and is refused, with its reason, by the Sentry format's validation.
"""

from __future__ import annotations

import orjson

from errorsink.ingest.formats.shared import MAX_ITEM_BYTES

DROPPED_FIELDS = ("breadcrumbs", "debug_meta", "modules", "extra", "request", "spans", "sdk")
FRAME_FIELDS_DROPPED = ("vars", "pre_context", "post_context", "context_line")
STRING_MAX = 8_192  # Sentry's own limit on a message
TAG_VALUE_MAX = 200  # Sentry's limit on a tag value
KEY_MAX = 200
DEPTH_MAX = 8
FRAMES_KEPT = 30
CUT = "…"
DEEPER = "[cut: nested too deep]"
# Room left under MAX_ITEM_BYTES for the project id the accept step adds.
ITEM_ROOM = MAX_ITEM_BYTES - 200
LAST_TO_GO = ("user", "contexts")


def sentry_item(event: dict) -> dict:
    """The queue item for one Sentry event (without its project: the key says which).

    ``event`` is the door's own parse of the request and loses its frames' dropped fields in
    place: they are most of an SDK event's bytes, so the trimming walk never visits them."""
    for frames in _frame_lists(event):
        for frame in frames:
            if isinstance(frame, dict):
                for field in FRAME_FIELDS_DROPPED:
                    frame.pop(field, None)
    slim = {key: _trimmed(value, 1) for key, value in event.items() if key not in DROPPED_FIELDS}
    slim["tags"] = _tags_cut(slim.get("tags"))
    if slim["tags"] is None:
        del slim["tags"]
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    item = {"type": "sdk_event", "sdk": "sentry", "name": "event", "event_id": event_id,
            "event": slim}  # fmt: skip
    if _size(item) > ITEM_ROOM:
        for frames in _frame_lists(slim):
            del frames[:-FRAMES_KEPT]  # the innermost frames say where it failed
    for field in LAST_TO_GO:
        if _size(item) <= ITEM_ROOM:
            break
        slim.pop(field, None)
    return item


def _trimmed(value: object, depth: int) -> object:
    if isinstance(value, str):
        return value if len(value) <= STRING_MAX else value[: STRING_MAX - 1] + CUT
    if isinstance(value, dict | list) and depth >= DEPTH_MAX:
        return DEEPER
    if isinstance(value, dict):
        return {str(key)[:KEY_MAX]: _trimmed(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_trimmed(item, depth + 1) for item in value]
    return value


def _tags_cut(tags: object) -> object:
    """Tag values as Sentry keeps them: at most TAG_VALUE_MAX characters (a dict or pairs)."""
    if isinstance(tags, dict):
        return {key: _value_cut(value) for key, value in tags.items()}
    if isinstance(tags, list):
        return [[pair[0], _value_cut(pair[1])] if isinstance(pair, list) and len(pair) == 2
                else pair for pair in tags]  # fmt: skip
    return tags


def _value_cut(value: object) -> object:
    if isinstance(value, str) and len(value) > TAG_VALUE_MAX:
        return value[: TAG_VALUE_MAX - 1] + CUT
    return value


def _frame_lists(event: dict) -> list[list]:
    """The frame lists of the event's exceptions (and its own stacktrace), where they are
    shaped as Sentry sends them; anything else is left to the format's validation."""
    stacks = []
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    for entry in values if isinstance(values, list) else []:
        if isinstance(entry, dict):
            stacks.append(entry.get("stacktrace"))
    stacks.append(event.get("stacktrace"))
    return [
        stack["frames"]
        for stack in stacks
        if isinstance(stack, dict) and isinstance(stack.get("frames"), list)
    ]


def _size(item: dict) -> int:
    try:
        return len(orjson.dumps(item))
    except orjson.JSONEncodeError:
        return MAX_ITEM_BYTES + 1  # the accept step refuses it with orjson's reason
