"""Sentry's envelope, read the way Sentry reads it (docs/sentry.md): a header line, then items
each with its own header and payload. Only events matter to errorsink; the rest is skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

EVENT_ITEM_TYPES = ("event",)


class SentryError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class Unpacked:
    """What a body held: its events in order, why any item was refused, and where the framing
    broke (the items after that point cannot be found)."""

    events: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    broken: str | None = None


def auth_header_key(header: str) -> str:
    # "Sentry sentry_key=abc, sentry_version=7, sentry_client=sentry.python/2.19.0"
    _, _, pairs = header.partition(" ")
    for pair in pairs.split(","):
        name, _, value = pair.strip().partition("=")
        if name == "sentry_key":
            return value.strip()
    return ""


def json_object(data: bytes, what: str) -> dict:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SentryError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SentryError(400, f"{what} is not a JSON object")
    return value


def envelope_unpack(body: bytes) -> Unpacked:
    """The event payloads of an envelope, in order; other item types are skipped, an event
    that is not a JSON object is refused alone. A bad header line or length ends the reading:
    the framing cannot be trusted after it."""
    header_line, _, rest = body.partition(b"\n")
    json_object(header_line, "the envelope header")
    unpacked, position, number = Unpacked(), 0, 0
    try:
        while position < len(rest):
            number += 1
            line_end = rest.find(b"\n", position)
            line_end = len(rest) if line_end == -1 else line_end
            if not rest[position:line_end].strip():
                position = line_end + 1
                continue
            header = json_object(rest[position:line_end], f"item {number}'s header")
            payload, position = _payload(rest, line_end + 1, header, number)
            if header.get("type") in EVENT_ITEM_TYPES:
                _event_add(unpacked, payload, number)
    except SentryError as exc:
        unpacked.broken = exc.detail
    return unpacked


def _event_add(unpacked: Unpacked, payload: bytes, number: int) -> None:
    try:
        unpacked.events.append(json_object(payload, f"item {number} (an event)"))
    except SentryError as exc:
        unpacked.refused.append(exc.detail)


def _payload(rest: bytes, start: int, header: dict, number: int) -> tuple[bytes, int]:
    length = header.get("length")
    if length is None:
        end = rest.find(b"\n", start)
        end = len(rest) if end == -1 else end
        return rest[start:end], end + 1
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise SentryError(400, f"item {number}'s length is not a non-negative integer")
    if start + length > len(rest):
        raise SentryError(400, f"item {number}'s length {length} runs past the end")
    return rest[start : start + length], start + length + 1
