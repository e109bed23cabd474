"""Sentry's own endpoints, ``/api/<id>/envelope/`` and ``/api/<id>/store/`` (docs/sentry.md):
unmodified Sentry SDKs post here, authenticated by the DSN's public key. Their events go onto
the queue as the ``sentry`` SDK format, validated first so that what is accepted is stored;
other item types are accepted and skipped.

Answers are Sentry's: ``{"id": ...}`` (with ``refused`` naming events it could not use), or
``{"detail": ...}`` with 400, 401, 403, 413, 429 (``Retry-After`` and ``X-Sentry-Rate-Limits``,
which Sentry SDKs obey by pausing) or 500.
"""

from __future__ import annotations

import logging

from errorsink.door.answers import Answer
from errorsink.door.body import BodyRefused
from errorsink.door.grants import grant_cache
from errorsink.door.queueing import queue_checked
from errorsink.door.request import DoorRequest
from errorsink.ingest.accept import queue_item
from errorsink.ingest.formats import BadItem
from errorsink.projects.grants import Grants, SentryGrant
from errorsink.sentry.envelope import (
    SentryError,
    Unpacked,
    auth_header_key,
    envelope_unpack,
    json_object,
)
from errorsink.sentry.events import sentry_item

log = logging.getLogger("errorsink.api")

QUOTA_RETRY_AFTER = 1


async def sentry_post(request: DoorRequest, key_id: int, *, envelope: bool) -> Answer:
    """Every valid event is queued whatever else the body holds; the answer is 200 (with the
    reasons of any event refused) unless the framing broke or nothing in it was an acceptable
    event (then 400 naming the first reason). Errors, even unexpected ones, in Sentry's form."""
    try:
        return await _answered(request, key_id, envelope)
    except SentryError as exc:
        return Answer(exc.status, {"detail": exc.detail}, exc.headers)
    except Exception:
        log.exception("the Sentry endpoint failed on a request")
        return Answer(500, {"detail": "internal error; the request was not accepted"})


async def _answered(request: DoorRequest, key_id: int, envelope: bool) -> Answer:
    for _ in range(3):
        grants, grant = await _authorised(request, key_id)
        unpacked = _unpacked(await _body(request), envelope)
        payloads, first_id, refused = _validated(unpacked.events, grant.project_id)
        queued = await queue_checked(payloads, project_id=grant.project_id, grants=grants)
        if queued.outcome == "stale":
            await grant_cache.reload()
            continue
        if queued.outcome == "quota":
            raise _over_quota(grants.quota_of(grant.project_id))
        refused = unpacked.refused + refused
        if unpacked.broken:
            kept = f"; the {len(unpacked.events)} event(s) before it were accepted"
            raise SentryError(400, unpacked.broken + (kept if unpacked.events else ""))
        if not payloads and refused:
            raise SentryError(400, f"no valid event in the request: {refused[0]}")
        return Answer(200, {"id": first_id, **({"refused": refused} if refused else {})})
    raise SentryError(503, "the project's keys kept changing; retry", {"Retry-After": "1"})


async def _authorised(request: DoorRequest, key_id: int) -> tuple[Grants, SentryGrant]:
    public_key = request.query("sentry_key") or auth_header_key(request.header(b"x-sentry-auth"))
    if not public_key:
        raise SentryError(401, "missing authorization information")
    grants, grant = await grant_cache.sentry_key(key_id, public_key)
    if grant is None:
        raise SentryError(403, "invalid api key")
    return grants, grant


async def _body(request: DoorRequest) -> bytes:
    try:
        return await request.read()
    except BodyRefused as exc:
        raise SentryError(exc.status, exc.message) from None


def _unpacked(body: bytes, envelope: bool) -> Unpacked:
    if envelope:
        return envelope_unpack(body)
    return Unpacked(events=[json_object(body, "the event")])


def _validated(events: list[dict], project_id: str) -> tuple[list[bytes], str | None, list[str]]:
    """The queue items of the usable events, the first one's id, and why others were not."""
    payloads, first_id, refused = [], None, []
    for event in events:
        try:
            accepted = queue_item(sentry_item(event), project_id)
        except BadItem as exc:
            log.info("sentry event refused: %s", exc.reason)
            refused.append(f"an event is not usable: {exc.reason}")
            continue
        payloads.append(accepted.payload)
        first_id = first_id or accepted.event_id
    return payloads, first_id, refused


def _over_quota(quota: int) -> SentryError:
    # "<seconds>::project": every category, this project (Sentry's rate-limit header grammar).
    return SentryError(
        429,
        f"over this project's ingest quota of {quota:,} events a second; "
        f"retry in {QUOTA_RETRY_AFTER}s",
        headers={
            "Retry-After": str(QUOTA_RETRY_AFTER),
            "X-Sentry-Rate-Limits": f"{QUOTA_RETRY_AFTER}::project",
        },  # fmt: skip
    )
