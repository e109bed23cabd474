"""Requests no page or route can serve, refused before any view reads them."""

from __future__ import annotations

from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from errorsink.api.errors import ApiError, error_response, is_api_request

NUL_REFUSED = "The address contains a NUL character (%00), which no page or route accepts."


class NulRefusedMiddleware:
    """A NUL character in the path or the query string gets 400: PostgreSQL cannot hold one in
    text, so a session id or a filter carrying it would otherwise fail deep in a read (a 500).
    Nothing errorsink stores contains one: ingest replaces them."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or "\x00" in unquote(request.META.get("QUERY_STRING", "")):
            if is_api_request(request):
                return error_response(request, ApiError(400, NUL_REFUSED))
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
