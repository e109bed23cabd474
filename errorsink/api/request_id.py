"""X-Request-Id: echoed or minted per request, on every response and on every log line.

Kept free of Django imports at module level: the logging configuration imports the formatter
before the apps are ready.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets

HEADER = "X-Request-Id"
# A caller's id is echoed only if it is short and plain, so it cannot forge log lines or headers.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def request_id_new() -> str:
    return f"req_{secrets.token_hex(12)}"


def request_id_from_header(value: str | None) -> str:
    """The caller's id if acceptable, else a new one."""
    if value and _ACCEPTABLE.fullmatch(value):
        return value
    return request_id_new()


def request_id_current() -> str | None:
    return _current.get()


def request_id_bind(value: str) -> contextvars.Token:
    return _current.set(value)


def request_id_unbind(token: contextvars.Token) -> None:
    _current.reset(token)


class RequestIdFormatter(logging.Formatter):
    """Appends ` request_id=...` to every line logged while a request is being served."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # django.request logs with extra={"request": ...} after the middleware has returned.
        request_id = (
            getattr(record, "request_id", None)
            or getattr(getattr(record, "request", None), "request_id", None)
            or _current.get()
        )
        return f"{line} request_id={request_id}" if request_id else line
