"""First middleware: binds the request id, stamps X-Request-Id, logs one line per API call,
and answers CORS for /api/ so browsers can report client-only codes (docs/api.md).

CORS allows any origin: the API authenticates with a bearer key, never with cookies, so a page
on another origin gains nothing it could not do with the key itself.
"""

from __future__ import annotations

import logging
import re
import time

from django.http import HttpRequest, HttpResponse

from errorsink.api.errors import envelope_stray_error, is_api_request
from errorsink.api.request_id import (
    HEADER,
    request_id_bind,
    request_id_from_header,
    request_id_unbind,
)

access_log = logging.getLogger("errorsink.api.access")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PATCH",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id",
    "Access-Control-Max-Age": "3600",
}


class RequestIdMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_header(request.headers.get(HEADER))
        request.request_id = request_id
        token = request_id_bind(request_id)
        started = time.monotonic()
        try:
            api = is_api_request(request)
            if api and _is_preflight(request):
                response = HttpResponse(status=204)
                for name, value in PREFLIGHT_HEADERS.items():
                    response[name] = value
            else:
                response = envelope_stray_error(request, self.get_response(request))
            response[HEADER] = request_id
            if api:
                for name, value in CORS_HEADERS.items():
                    response[name] = value
                access_log.info(
                    "%s %s %s %.0fms key=%s",
                    request.method,
                    _logged_path(request),
                    response.status_code,
                    (time.monotonic() - started) * 1000,
                    getattr(request, "api_key_prefix", None) or "-",
                    extra={"request_id": request_id},
                )
            return response
        finally:
            request_id_unbind(token)


# Query parameters that authenticate: a log line must not carry a credential.
SECRET_PARAMS = re.compile(r"(?<=[?&])(sentry_key|sentry_secret)=[^&]*")


def _logged_path(request: HttpRequest) -> str:
    return SECRET_PARAMS.sub(r"\1=[redacted]", request.get_full_path())


def _is_preflight(request: HttpRequest) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
