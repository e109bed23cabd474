"""The front door's operations in the API's OpenAPI document. errorsink/door answers them
outside Django, so ninja does not see them; they are described here from the same schemas."""

from __future__ import annotations

from errorsink.api.schemas import (
    EVENTS_REQUEST_BODY,
    MAX_ITEMS_PER_POST,
    BatchAcceptedOut,
    ErrorOut,
    EventsAcceptedOut,
)

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    413: "Request Entity Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}  # fmt: skip
QUOTA = (
    " Past the project's ingest quota (events a second, shared by every web process) the "
    "answer is 429 with `Retry-After`."
)


def door_operations_add(schema: dict) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (EventsAcceptedOut, BatchAcceptedOut, ErrorOut):
        _component_add(components, model)
    schema["paths"]["/api/v1/projects/{project_id}/events"] = {"post": _operation(
        "events_post", EventsAcceptedOut,
        summary="Report one item or a list of up to 1,000 items onto the ingest queue",
        description="All or nothing: if any item is invalid, nothing is enqueued and the 422 "
        "names each bad item by its index. Posting the same item again is harmless: its "
        "event_id (given, or derived from its content) is stored once." + QUOTA,
        body=EVENTS_REQUEST_BODY,
    )}  # fmt: skip
    schema["paths"]["/api/v1/projects/{project_id}/events/batch"] = {"post": _operation(
        "events_batch_post", BatchAcceptedOut,
        summary=f"Report up to {MAX_ITEMS_PER_POST:,} items, each accepted or refused on its own",
        description="A JSON array, or NDJSON (`Content-Type: application/x-ndjson`, one item a "
        "line). Valid items are queued even when others are not; `results` answers each by "
        "its index. 422 only when none is valid." + QUOTA + " Items past the quota are "
        "refused one by one in `results`, with `Retry-After` on the answer.",
        body=_batch_body(),
    )}  # fmt: skip


def _component_add(components: dict, model) -> None:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema


def _operation(operation_id: str, accepted, *, summary: str, description: str, body: dict) -> dict:
    responses = {"202": _json_response("Accepted", accepted.__name__)}
    for status, text in ERRORS.items():
        responses[str(status)] = _json_response(text, ErrorOut.__name__)
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": ["events"],
        "parameters": [
            {
                "in": "path",
                "name": "project_id",
                "required": True,
                "schema": {"title": "Project Id", "type": "string"},
            }
        ],  # fmt: skip
        "requestBody": body,
        "responses": responses,
        "security": [{"KeyAuth": []}],
    }


def _json_response(description: str, model_name: str) -> dict:
    ref = {"$ref": REF.format(model=model_name)}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _batch_body() -> dict:
    ndjson = {"type": "string", "description": "One item a line."}
    items = EVENTS_REQUEST_BODY["content"]["application/json"]["schema"]["oneOf"][1]
    return {
        "required": True,
        "content": {
            "application/json": {"schema": items},
            "application/x-ndjson": {"schema": ndjson},
        },
    }
