"""First middleware: binds the request id, stamps X-Request-Id, logs one line per API call."""

from __future__ import annotations

import logging
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


class RequestIdMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_header(request.headers.get(HEADER))
        request.request_id = request_id
        token = request_id_bind(request_id)
        started = time.monotonic()
        try:
            response = envelope_stray_error(request, self.get_response(request))
            response[HEADER] = request_id
            if is_api_request(request):
                key = getattr(request, "api_key_prefix", None) or "-"
                access_log.info(
                    "%s %s %s %.0fms key=%s",
                    request.method,
                    request.get_full_path(),
                    response.status_code,
                    (time.monotonic() - started) * 1000,
                    key,
                    extra={"request_id": request_id},
                )
            return response
        finally:
            request_id_unbind(token)
