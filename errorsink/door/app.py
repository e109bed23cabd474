"""The ASGI app in front of Django: the ingest routes are answered here, in the event loop,
with no middleware, no thread and no database; every other request goes on to Django.

What Django's middleware did for these routes is done here too: the Host is checked against
ALLOWED_HOSTS, a NUL in the address is refused, the request id is echoed or minted, CORS
headers are added and one access-log line is written.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http.request import split_domain_port, validate_host

from config.middleware import NUL_REFUSED
from errorsink.api.errors import SERVICE_UNAVAILABLE_RETRY_AFTER, ApiError
from errorsink.api.middleware import CORS_HEADERS, SECRET_PARAMS
from errorsink.api.request_id import (
    request_id_bind,
    request_id_from_header,
    request_id_unbind,
)
from errorsink.door.answers import Answer, api_error_answer
from errorsink.door.events import SCOPE as EVENTS_SCOPE
from errorsink.door.events import events_post
from errorsink.door.otlp import otlp_post
from errorsink.door.request import DoorRequest
from errorsink.door.sentry import sentry_post

access_log = logging.getLogger("errorsink.api.access")
log = logging.getLogger("errorsink.api")

Handler = Callable[[DoorRequest, str], Awaitable[Answer]]


@dataclass(frozen=True)
class DoorRoute:
    """One ingest route: its name and path as Django would write them (for the access matrix
    and the docs), the pattern it is matched by, the scope it asks of an API key, its handler."""

    name: str
    path: str
    pattern: re.Pattern
    scope: str | None
    handler: Handler


ROUTES: list[DoorRoute] = [
    DoorRoute("door:events", "api/v1/projects/<project_id>/events",
              re.compile(r"/api/v1/projects/([^/]+)/events"), EVENTS_SCOPE,
              lambda request, project: events_post(request, project, batch=False)),
    DoorRoute("door:events-batch", "api/v1/projects/<project_id>/events/batch",
              re.compile(r"/api/v1/projects/([^/]+)/events/batch"), EVENTS_SCOPE,
              lambda request, project: events_post(request, project, batch=True)),
    DoorRoute("door:sentry-envelope", "api/<sentry_id>/envelope/",
              re.compile(r"/api/(\d{1,18})/envelope/"), None,
              lambda request, key_id: sentry_post(request, int(key_id), envelope=True)),
    DoorRoute("door:sentry-store", "api/<sentry_id>/store/",
              re.compile(r"/api/(\d{1,18})/store/"), None,
              lambda request, key_id: sentry_post(request, int(key_id), envelope=False)),
    DoorRoute("door:otlp-traces", "v1/traces", re.compile(r"/v1/traces()"), EVENTS_SCOPE,
              lambda request, _: otlp_post(request, None)),
    DoorRoute("door:otlp-project-traces", "api/v1/projects/<project_id>/otlp/v1/traces",
              re.compile(r"/api/v1/projects/([^/]+)/otlp/v1/traces"), EVENTS_SCOPE,
              otlp_post),
]  # fmt: skip
OUTAGES = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


class FrontDoor:
    def __init__(self, fallback) -> None:
        self.fallback = fallback

    async def __call__(self, scope: dict, receive, send) -> None:
        route = _route(scope) if scope["type"] == "http" else None
        if route is None:
            return await self.fallback(scope, receive, send)
        handler, argument = route
        headers = dict(scope["headers"])
        request = DoorRequest(scope["method"], scope["path"], scope.get("query_string", b""),
                              headers, request_id_from_header(
                                  headers.get(b"x-request-id", b"").decode("latin-1")),
                              receive)  # fmt: skip
        token = request_id_bind(request.request_id)
        started = time.monotonic()
        try:
            answer = await _answer(request, handler, argument)
            await _send(send, answer, request.request_id)
            _log_access(request, answer.status, started)
        finally:
            request_id_unbind(token)


def _route(scope: dict) -> tuple[Handler, str] | None:
    """The handler of an ingest route (whatever the method: a GET gets 405 here)."""
    if scope["method"] == "OPTIONS":  # CORS preflight: Django's middleware answers it
        return None
    path = scope["path"]
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route.handler, match.group(1)
    return None


async def _answer(request: DoorRequest, handler: Handler, argument: str) -> Answer:
    try:
        _admissible(request)
        return await handler(request, argument)
    except ApiError as error:
        return api_error_answer(error, request.request_id)
    except OUTAGES as exc:
        log.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        retry = {"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)}
        return api_error_answer(ApiError(503, headers=retry), request.request_id)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return api_error_answer(ApiError(500), request.request_id)


def _admissible(request: DoorRequest) -> None:
    host = request.header(b"host")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        raise ApiError(400, f"Invalid Host header {host[:100]!r}")
    if "\x00" in request.path or "\x00" in unquote(request.query_string.decode("latin-1")):
        raise ApiError(400, NUL_REFUSED)
    if request.method != "POST":
        raise ApiError(405, f"Method {request.method} not allowed; allowed: POST",
                       headers={"Allow": "POST"})  # fmt: skip


async def _send(send, answer: Answer, request_id: str) -> None:
    body = answer.encoded()
    headers = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    for name, value in (*CORS_HEADERS.items(), *answer.headers.items()):
        headers.append((name.lower().encode(), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log_access(request: DoorRequest, status: int, started: float) -> None:
    path = request.path
    if request.query_string:
        path = f"{path}?{request.query_string.decode('latin-1')}"
    access_log.info(
        "%s %s %s %.0fms key=%s",
        request.method,
        SECRET_PARAMS.sub(r"\1=[redacted]", path),
        status,
        (time.monotonic() - started) * 1000,
        request.key_label,
        extra={"request_id": request.request_id},
    )
