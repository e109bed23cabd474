"""``POST /api/v1/projects/{id}/events`` (one item, or a list all or nothing) and its batch form
``…/events/batch`` (a JSON array or NDJSON, each item accepted or refused on its own), answered
from the grant cache and one Redis call (docs/api.md)."""

from __future__ import annotations

import uuid

import orjson

from errorsink.api.errors import ApiError
from errorsink.api.schemas import MAX_ITEMS_PER_POST
from errorsink.door.answers import Answer
from errorsink.door.body import BodyRefused
from errorsink.door.grants import grant_cache
from errorsink.door.queueing import queue_checked
from errorsink.door.request import DoorRequest
from errorsink.ingest.accept import QueueItem, queue_item
from errorsink.ingest.formats import BadItem
from errorsink.ingest.formats.shared import json_loads_exact
from errorsink.projects.grants import ApiKeyGrant, Grants

SCOPE = "errors:write"
QUOTA_RETRY_AFTER = 1  # the quota counts per second


async def events_post(request: DoorRequest, path_project: str, *, batch: bool) -> Answer:
    """Authorised first (401, 404, 403 in the catalog's order), then read and validated once,
    then queued; decided again if the grants changed meanwhile."""
    for _ in range(3):
        grants, grant = await _authorised(request, path_project)
        items, listed = await _items(request, batch)
        outcomes = _validated(items, grant.project_id)
        refused = {_label(i, listed): o for i, o in enumerate(outcomes) if isinstance(o, str)}
        if refused and not batch:
            raise ApiError(422, f"{len(refused)} of {len(items)} items are invalid",
                           details=refused)  # fmt: skip
        accepted = [o for o in outcomes if isinstance(o, QueueItem)]
        if not accepted:
            raise ApiError(422, f"none of the {len(items)} items is valid", details=refused)
        queued = await queue_checked([item.payload for item in accepted],
                                     project_id=grant.project_id, grants=grants,
                                     partial=batch)  # fmt: skip
        if queued.outcome != "stale":
            return _answer(outcomes, queued.count, grants.quota_of(grant.project_id), batch)
        await grant_cache.reload()
    raise ApiError(503, "the access grants kept changing; retry", headers={"Retry-After": "1"})


def _answer(outcomes: list, queued: int, quota: int, batch: bool) -> Answer:
    if queued == 0:
        raise ApiError(429, _quota_message(quota), headers={"Retry-After": str(QUOTA_RETRY_AFTER)})
    if not batch:
        return Answer(202, {"accepted": queued, "event_ids": [o.event_id for o in outcomes]})
    results, left = [], queued
    for outcome in outcomes:
        if isinstance(outcome, str):
            results.append({"error": outcome})
        elif left:
            results.append({"event_id": outcome.event_id})
            left -= 1
        else:
            results.append({"error": _quota_message(quota)})
    over_quota = sum(isinstance(outcome, QueueItem) for outcome in outcomes) - queued
    headers = {"Retry-After": str(QUOTA_RETRY_AFTER)} if over_quota else {}
    body = {"accepted": queued, "refused": len(outcomes) - queued, "results": results}
    return Answer(202, body, headers)


def _quota_message(quota: int) -> str:
    return (f"over this project's ingest quota of {quota:,} events a second; "
            f"retry in {QUOTA_RETRY_AFTER}s")  # fmt: skip


async def _authorised(request: DoorRequest, path_project: str) -> tuple[Grants, ApiKeyGrant]:
    scheme, _, token = request.header(b"authorization").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing API key: send the header Authorization: Bearer <key>")
    grants, grant = await grant_cache.api_key(token)
    if grant is None:
        raise ApiError(401, "Invalid or revoked API key")
    request.key_label = grant.prefix
    if not _same_project(grant.project_id, path_project):
        raise ApiError(404, "No such project")
    if SCOPE not in grant.scopes:
        raise ApiError(403, f"This API key lacks the scope {SCOPE}")
    return grants, grant


def _same_project(granted: str, path_project: str) -> bool:
    try:
        return uuid.UUID(path_project) == uuid.UUID(granted)
    except ValueError:
        return False


async def _items(request: DoorRequest, batch: bool) -> tuple[list, bool]:
    """The posted items, and whether they came as a list (their labels are then indexes)."""
    try:
        body = await request.read()
    except BodyRefused as exc:
        raise ApiError(exc.status, exc.message) from None
    media_type = request.header(b"content-type").split(";")[0].strip().lower()
    if batch and media_type in ("application/x-ndjson", "application/jsonl"):
        items, listed = _ndjson(body), True
    else:
        items, listed = _json_items(body, batch)
    if not items:
        raise ApiError(422, details={"body": "must contain at least one item"})
    if len(items) > MAX_ITEMS_PER_POST:
        raise ApiError(
            422,
            details={"body": f"at most {MAX_ITEMS_PER_POST} items per request, got {len(items)}"},
        )
    return items, listed


def _json_items(body: bytes, batch: bool) -> tuple[list, bool]:
    try:
        value = json_loads_exact(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    except BadItem as exc:
        raise ApiError(422, exc.reason, details={"body": exc.reason}) from None
    if isinstance(value, list):
        return value, True
    if isinstance(value, dict) and not batch:
        return [value], False
    expected = "a JSON array of objects" if batch else "a JSON object or an array of objects"
    raise ApiError(422, details={"body": f"must be {expected}"})


class _Unreadable:
    """An NDJSON line that is not JSON: refused alone, by its index."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _ndjson(body: bytes) -> list:
    items: list = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            items.append(json_loads_exact(line))
        except orjson.JSONDecodeError as exc:
            items.append(_Unreadable(f"line is not valid JSON: {exc}"))
        except BadItem as exc:
            items.append(_Unreadable(exc.reason))
    return items


def _validated(items: list, project_id: str) -> list[QueueItem | str]:
    """Per item, in order: its queue item, or why it is refused."""
    outcomes: list[QueueItem | str] = []
    for item in items:
        try:
            if isinstance(item, _Unreadable):
                raise BadItem(item.reason)
            outcomes.append(queue_item(item, project_id))
        except BadItem as exc:
            outcomes.append(exc.reason)
    return outcomes


def _label(index: int, listed: bool) -> str:
    return f"items[{index}]" if listed else "item"
