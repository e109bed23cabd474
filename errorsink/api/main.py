"""The NinjaAPI of /api/v1 and the mapping of every exception onto the error envelope."""

from __future__ import annotations

import logging

import orjson
import redis
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from errorsink.api.alert_routes import router as alerts_router
from errorsink.api.door_schema import door_operations_add
from errorsink.api.errors import (
    SERVICE_UNAVAILABLE_RETRY_AFTER,
    ApiError,
    error_response,
)
from errorsink.api.issue_routes import router as issues_router
from errorsink.api.routes import router
from errorsink.api.turn_routes import router as turns_router

logger = logging.getLogger("errorsink.api")


class StrictJsonParser(Parser):
    """orjson: refuses NaN/Infinity and invalid UTF-8, which json.loads would let through."""

    def parse_body(self, request: HttpRequest):
        return orjson.loads(request.body)


def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(request, exc)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if exc.status_code == 400 and message.startswith("Cannot parse request body"):
        message = "Request body is not valid JSON"
    return error_response(request, ApiError(exc.status_code, message))


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details: dict[str, str] = {}
    for error in exc.errors:
        field = _field_path(error.get("loc", ()))
        message = error.get("msg", "invalid")
        details[field] = f"{details[field]}; {message}" if field in details else message
    return error_response(request, ApiError(422, details=details))


def _field_path(loc) -> str:
    """("body", "changes", "error_message") -> "error_message"; ("query", "x") -> "x"."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else ["body"]
    elif parts and parts[0] in ("path", "query", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, ApiError(404))


def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, ApiError(413))


def _dependency_down(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(
        request,
        ApiError(503, headers={"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)}),
    )


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(request, ApiError(500))


class ErrorsinkApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        door_operations_add(schema)
        return schema


def build_api() -> NinjaAPI:
    api = ErrorsinkApi(
        title="errorsink API",
        version="1",
        description="Session errors, quality warnings and call-termination causes of voice "
        "and chat agent sessions. Authenticate with `Authorization: Bearer <key>`; every "
        'error is `{"error": {"code", "message", "details"?, "requestId"}}` and every '
        "response carries `X-Request-Id`.",
        urls_namespace="api",
        parser=StrictJsonParser(),
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    api.add_exception_handler(Exception, _unexpected)
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(RequestDataTooBig, _too_big)
    for exc_class in (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError):
        api.add_exception_handler(exc_class, _dependency_down)
    api.add_router("/", router)
    api.add_router("/", issues_router)
    api.add_router("/", alerts_router)
    api.add_router("/", turns_router)
    return api


api = build_api()
