"""The error envelope of docs/api.md and the status catalog, for every failure under /api/.

`{"error": {"code", "message", "details"?, "requestId"}}`: raised as ApiError from the API's
own code, mapped from ninja's and Django's exceptions by `install_exception_handlers`, and from
Django's 404/500 views and stray non-JSON error responses by `handler404`, `handler500` and
`RequestIdMiddleware`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

import orjson
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from errorsink.api.request_id import request_id_current, request_id_new

logger = logging.getLogger("errorsink.api")

API_PREFIX = "/api/"
# Seconds a client should wait when a dependency is down: long enough for a restart to finish,
# short enough that a runner's retry loop recovers quickly.
SERVICE_UNAVAILABLE_RETRY_AFTER = 5

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
MESSAGES = {
    400: "The request is malformed",
    401: "Authentication is missing or invalid",
    403: "This API key is not allowed to do that",
    404: "Not found",
    405: "Method not allowed",
    413: "The request body is too large",
    422: "Request validation failed",
    429: "Rate limit exceeded",
    500: "An unexpected server failure occurred",
    503: "A dependency is unavailable; retry shortly",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or code_for_status(status)
        self.message = message or MESSAGES.get(status, "Request failed")
        self.details = dict(details) if details else None
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.code}: {self.message}")


def code_for_status(status: int) -> str:
    if status in CODES:
        return CODES[status]
    return "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def request_id_of(request: HttpRequest | None) -> str:
    return getattr(request, "request_id", None) or request_id_current() or request_id_new()


def error_json(error: ApiError, request_id: str) -> dict:
    body: dict = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body["requestId"] = request_id
    return {"error": body}


def error_response(request: HttpRequest | None, error: ApiError) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps(error_json(error, request_id_of(request))),
        status=error.status,
        content_type="application/json",
    )
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="errorsink"'
    return response


def envelope_stray_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """An error response under /api/ that is not already JSON (Django's own 405, 404 in DEBUG,
    CSRF 403, 400 for a bad Host...) rewritten as the envelope, keeping its headers."""
    if response.status_code < 400 or not is_api_request(request):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    error = ApiError(response.status_code)
    if response.status_code == 405 and response.has_header("Allow"):
        error.message = f"Method {request.method} not allowed; allowed: {response['Allow']}"
    replacement = error_response(request, error)
    for name in ("Allow", "Retry-After"):
        if response.has_header(name):
            replacement[name] = response[name]
    return replacement


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return error_response(request, ApiError(404, "No such route"))
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    outage = _dependency_down(sys.exc_info()[1])
    if is_api_request(request):
        if outage:
            return error_response(request, ApiError(503, headers={
                "Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)}))  # fmt: skip
        return error_response(request, ApiError(500))
    if outage:
        return outage_page(outage)
    return defaults.server_error(request)


def _dependency_down(exc: BaseException | None) -> str | None:
    """Which dependency an exception says is unreachable, if it says so."""
    import redis
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return "PostgreSQL"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError):
        return "Redis"
    return None


def outage_page(dependency: str) -> HttpResponse:
    """A page that says what is wrong and comes back by itself: it needs neither the database
    nor the session (no signed-in user is shown), so it renders during the outage."""
    html = render_to_string("outage.html", {"dependency": dependency,
                                            "retry": SERVICE_UNAVAILABLE_RETRY_AFTER})  # fmt: skip
    response = HttpResponse(html, status=503)
    response["Retry-After"] = str(SERVICE_UNAVAILABLE_RETRY_AFTER)
    return response
