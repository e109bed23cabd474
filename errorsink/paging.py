"""Keyset paging for every list of the dashboard and the API: an opaque cursor names the last row
of a page by its sort key, so "older" stays correct while new rows arrive in front.

A cursor is URL-safe base64 of a JSON array; it is opaque to callers and checked on the way in,
so a malformed or tampered one is a clear error (422 in the API), never a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

LIMIT_DEFAULT = 20
LIMIT_MAX = 100


class BadCursor(ValueError):
    """The cursor is not one errorsink handed out (or not for this list)."""


def cursor_encode(*values: datetime | int | str) -> str:
    """The cursor after a row whose sort key is ``values``."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def cursor_decode(text: str, *shape: type) -> tuple[Any, ...]:
    """The sort key a cursor names, checked against ``shape`` (datetime, int or str per part)."""
    try:
        padded = text + "=" * (-len(text) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        raise BadCursor("cursor is not one this list handed out") from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise BadCursor("cursor is not one this list handed out")
    return tuple(_part(value, kind) for value, kind in zip(values, shape, strict=True))


def _part(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise BadCursor("cursor holds a malformed time") from None
        if parsed.tzinfo is None:
            raise BadCursor("cursor holds a time without a time zone")
        return parsed
    # bool is an int to Python; a cursor never holds one.
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise BadCursor("cursor is not one this list handed out")


@dataclass(frozen=True, slots=True)
class Page[T]:
    """One page of a list and the cursor of the next, None on the last page."""

    items: list[T]
    next: str | None


def page_of[T](rows: list[T], limit: int, key: Callable[[T], tuple]) -> Page[T]:
    """A page of ``limit`` rows from ``limit + 1`` read: the extra one says there is a next,
    and the cursor names the last row shown by its sort key."""
    if len(rows) <= limit:
        return Page(rows, None)
    return Page(rows[:limit], cursor_encode(*key(rows[limit - 1])))
