"""OTLP/HTTP ``POST /v1/traces`` (and ``/api/v1/projects/{id}/otlp/v1/traces``): an agent
framework's spans, of which the turn-shaped ones are queued as ``turn`` items (docs/turns.md).

As every door route: no database and one Redis call; each item is validated as the worker will
read it, so what is accepted is stored. Answers follow OTLP/HTTP in the request's encoding: 200
with an empty ``ExportTraceServiceResponse``, or with ``partial_success`` counting the spans not
used (ignored ones by name, rejected ones with a reason); errors carry a ``google.rpc.Status``,
429 and 503 a ``Retry-After``.
"""

from __future__ import annotations

import logging
import uuid

import redis
from django.db import InterfaceError, OperationalError

from errorsink.api.errors import SERVICE_UNAVAILABLE_RETRY_AFTER
from errorsink.door.answers import Answer
from errorsink.door.body import BodyRefused
from errorsink.door.events import QUOTA_RETRY_AFTER, SCOPE
from errorsink.door.grants import grant_cache
from errorsink.door.queueing import queue_checked
from errorsink.door.request import DoorRequest
from errorsink.ingest.accept import queue_item
from errorsink.ingest.formats import BadItem
from errorsink.projects.grants import Grants
from errorsink.turns.otlp import (
    JSON,
    MEDIA_TYPES,
    PROTOBUF,
    OtlpRefused,
    Span,
    request_decode,
    response_encode,
    spans_of,
    status_encode,
)
from errorsink.turns.otlp_json import json_spans
from errorsink.turns.spans import Extracted, turns_extract

log = logging.getLogger("errorsink.api")
_OUTAGES = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


async def otlp_post(request: DoorRequest, path_project: str | None) -> Answer:
    media_type = request.header(b"content-type").split(";")[0].strip().lower()
    answer_type = media_type if media_type in MEDIA_TYPES else JSON
    try:
        return await _answered(request, path_project, media_type)
    except OtlpRefused as exc:
        return _refusal(answer_type, exc.status, exc.message, _retry_headers(exc.status))
    except _OUTAGES as exc:
        log.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        return _refusal(answer_type, 503, "a dependency is unavailable; retry",
                        {"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)})  # fmt: skip
    except Exception:
        log.exception("the OTLP receiver failed on a request")
        return _refusal(answer_type, 500, "internal error; the request was not accepted", {})


async def _answered(request: DoorRequest, path_project: str | None, media_type: str) -> Answer:
    if media_type not in MEDIA_TYPES:
        raise OtlpRefused(415, f"Content-Type must be {PROTOBUF} or {JSON}, got {media_type!r}")
    token = bearer(request.header(b"authorization"))
    # Refused before the body is read: a wrong key never costs an upload's inflating.
    _, _, request.key_label = await _authorised(token, path_project)
    body = await _body(request)
    spans = spans_of(request_decode(body)) if media_type == PROTOBUF else json_spans(body)
    rejected, message = await export_queue(token, path_project, spans)
    return Answer(200, response_encode(media_type, rejected, message), {}, media_type)


async def export_queue(token: str, path_project: str | None, spans: list[Span]) -> tuple[int, str]:
    """Queue an export's turn spans for the key's project (OTLP/HTTP and OTLP/gRPC alike):
    how many spans were not used, and why. OtlpRefused for a key, a project or the quota."""
    extracted = turns_extract(spans)
    for _ in range(3):
        grants, project_id, _ = await _authorised(token, path_project)
        payloads, refused = _validated(extracted, project_id)
        queued = await queue_checked(payloads, project_id=project_id, grants=grants)
        if queued.outcome == "stale":
            await grant_cache.reload()
            continue
        if queued.outcome == "quota":
            quota = grants.quota_of(project_id)
            raise OtlpRefused(429, f"over this project's ingest quota of {quota:,} events a "
                                   f"second; retry in {QUOTA_RETRY_AFTER}s")  # fmt: skip
        return _partial(extracted, refused)
    raise OtlpRefused(503, "the project's keys kept changing; retry")


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise OtlpRefused(401, "Missing key: send Authorization: Bearer <API key or DSN public "
                               "key> (the exporter's headers)")  # fmt: skip
    return token


async def _authorised(token: str, path_project: str | None) -> tuple[Grants, str, str]:
    """The grants, the project of the token and a label for the access log: the token is an
    API key with errors:write, or a DSN's public key."""
    grants, grant = await grant_cache.api_key(token)
    if grant is not None:
        project_id, scopes, label = grant.project_id, grant.scopes, grant.prefix
    else:
        grants, sentry = await grant_cache.sentry_public_key(token)
        if sentry is None:
            raise OtlpRefused(401, "Invalid or revoked key")
        project_id, scopes, label = sentry.project_id, frozenset({SCOPE}), "dsn"
    if path_project is not None and not _same_project(project_id, path_project):
        raise OtlpRefused(404, "No such project")
    if SCOPE not in scopes:
        raise OtlpRefused(403, f"This API key lacks the scope {SCOPE}")
    return grants, project_id, label


def _same_project(granted: str, path_project: str) -> bool:
    try:
        return uuid.UUID(path_project) == uuid.UUID(granted)
    except ValueError:
        return False


async def _body(request: DoorRequest) -> bytes:
    try:
        return await request.read()
    except BodyRefused as exc:
        raise OtlpRefused(exc.status, exc.message) from None


def _validated(extracted: Extracted, project_id: str) -> tuple[list[bytes], list[str]]:
    payloads, refused = [], []
    for item in extracted.items:
        try:
            payloads.append(queue_item(item, project_id).payload)
        except BadItem as exc:
            refused.append(f"span {item.get('span_id')}: {exc.reason}")
    return payloads, refused


def _partial(extracted: Extracted, refused: list[str]) -> tuple[int, str]:
    """How many spans were not used, and why, in a sentence or two."""
    reasons = extracted.rejected + refused
    ignored = sum(extracted.ignored.values())
    parts = []
    if ignored:
        names = ", ".join(f"{name} x{count}" for name, count in extracted.ignored.most_common(5))
        parts.append(f"{ignored} span(s) ignored, not turns ({names})")
    if reasons:
        more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        parts.append(f"{len(reasons)} rejected: {'; '.join(reasons[:3])}{more}")
    return ignored + len(reasons), ". ".join(parts)


def _retry_headers(status: int) -> dict[str, str]:
    if status == 429:
        return {"Retry-After": str(QUOTA_RETRY_AFTER)}
    if status == 503:
        return {"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)}
    return {}


def _refusal(media_type: str, status: int, message: str, headers: dict[str, str]) -> Answer:
    return Answer(status, status_encode(media_type, status, message), headers, media_type)
