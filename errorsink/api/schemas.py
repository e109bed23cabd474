"""Request and response shapes of /api/v1, as the OpenAPI document publishes them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ninja import Field, ModelSchema, Schema
from pydantic import ConfigDict, create_model

from errorsink.catalog import CodeInfo
from errorsink.ingest.formats import MAX_ITEM_BYTES, QUEUE_ITEM
from errorsink.projects.models import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN, SessionSettings
from errorsink.projects.session_settings import (
    ERROR_MESSAGE_MAX,
    IDLE_TIMEOUT_MAX,
    IDLE_TIMEOUT_MIN,
    INGEST_QUOTA_MAX,
)
from errorsink.sessions.models import Event
from errorsink.sessions.serialise import PUBLIC_EVENT_FIELDS

MAX_ITEMS_PER_POST = 1000


class ErrorBody(Schema):
    code: str = Field(..., examples=["VALIDATION_ERROR"])
    message: str
    details: dict[str, str] | None = Field(
        None, description="Per field (or per item index) what is wrong; present on 422."
    )
    requestId: str = Field(..., examples=["req_0f3c2a9be1d04e7a8c1b2d3e"])  # noqa: N815


class ErrorOut(Schema):
    error: ErrorBody


# A catalog entry as published: built from CodeInfo's own fields, so there is one definition.
# Schema reads attributes, so routes hand over the CodeInfo itself.
CodeOut = create_model(
    "CodeOut",
    __base__=Schema,
    **{field.name: (field.type, ...) for field in dataclasses.fields(CodeInfo)},
)


class EventOut(ModelSchema):
    """An event as the API shows it: the model's public fields (one list, in
    errorsink/sessions/serialise.py) and the code's catalog entry."""

    customer_context: dict[str, Any] | None
    details: dict[str, Any]
    catalog: CodeOut | None = Field(
        ..., description="The code's catalog entry (description and fix); null when unknown."
    )

    class Meta:
        model = Event
        fields = list(PUBLIC_EVENT_FIELDS)


class LatestErrorsOut(Schema):
    project_id: str
    errors: list[EventOut] = Field(..., description="Newest arrival first.")
    next: str | None = Field(..., description="Cursor of the next page; null on the last.")


class SessionOut(Schema):
    session_id: str
    build_id: str
    first_seen: datetime
    last_seen: datetime
    event_count: int
    error_count: int
    warning_count: int
    end_cause: str = Field(..., description='How it ended; "" while it has no termination.')
    degraded: bool
    quality_tags: list[str]


class SessionsOut(Schema):
    sessions: list[SessionOut] = Field(..., description="Most recently started first.")
    next: str | None = Field(..., description="Cursor of the next page; null on the last.")


class SessionErrorsOut(Schema):
    project_id: str
    session_id: str
    errors: list[EventOut] = Field(..., description="In the order they happened.")
    truncated: bool = Field(..., description="True when cut at 1,000 events.")


class TimelineOut(Schema):
    project_id: str
    session_id: str
    events: list[EventOut] = Field(
        ..., description="Errors, warnings, terminations and info, in the order they happened."
    )
    truncated: bool


class EventsAcceptedOut(Schema):
    accepted: int
    event_ids: list[str] = Field(..., description="One per item, in the order posted.")


class BatchResult(Schema):
    event_id: str | None = Field(None, description="Present when the item was queued.")
    error: str | None = Field(None, description="Why the item was refused, when it was.")


class BatchAcceptedOut(Schema):
    accepted: int
    refused: int
    results: list[BatchResult] = Field(..., description="One per item, in the order posted.")


class SessionSettingsOut(Schema):
    project_id: str
    error_message: str
    idle_timeout_seconds: int
    retention_days: int = Field(
        ...,
        description="Raw events older than this many days are deleted (by when they happened, "
        "or arrived if earlier); quality figures are kept 13 months. Not part of deploy_env.",
    )
    ingest_quota: int | None = Field(
        ...,
        description="Events a second this project's senders may post (429 past it); null: the "
        "server's default (ERRORSINK_INGEST_QUOTA), 0: no limit. Not part of deploy_env.",
    )
    updated_at: datetime
    deploy_env: dict[str, str] = Field(
        ...,
        description="What the next deploy receives: AGENT_CRASH_TTS_MESSAGE and "
        "AGENT_IDLE_TIMEOUT_SECONDS.",
    )


class SessionSettingsPatch(Schema):
    """Only the fields given are changed; all are validated before anything is saved."""

    model_config = ConfigDict(extra="forbid")

    # Defaults of None without `| None`: a field may be left out, but an explicit null is
    # a validation error rather than "unchanged".
    error_message: str = Field(
        None, description=f"1 to {ERROR_MESSAGE_MAX} characters after trimming, one line."
    )
    idle_timeout_seconds: int = Field(
        None, description=f"{IDLE_TIMEOUT_MIN} to {IDLE_TIMEOUT_MAX}."
    )
    # Strict: pydantic would otherwise read true as 1, a one-day retention that deletes nearly
    # every event.
    retention_days: int = Field(
        None,
        strict=True,
        description=f"{RETENTION_DAYS_MIN} to {RETENTION_DAYS_MAX}, a JSON integer; applied by "
        "the next prune, within minutes.",
    )
    ingest_quota: int | None = Field(
        None,
        strict=True,
        description=f"0 to {INGEST_QUOTA_MAX:,} events a second, 0 for no limit, or null for the "
        "server's default; applied within a second.",
    )


class CodesOut(Schema):
    count: int
    codes: list[CodeOut]


def settings_out(settings: SessionSettings) -> dict:
    return {
        "project_id": str(settings.project_id),
        "error_message": settings.error_message,
        "idle_timeout_seconds": settings.idle_timeout_seconds,
        "retention_days": settings.project.retention_days,
        "ingest_quota": settings.project.ingest_quota,
        "updated_at": settings.updated_at,
        "deploy_env": settings.deploy_env(),
    }


# The body of POST .../events, published as JSON Schema only: the view parses it itself so that
# a bad item is reported by its index with the normaliser's own reason, not pydantic's.
def _inlined(schema: Any, definitions: dict) -> Any:
    # The OpenAPI document has no place for the union's own $defs; they are not recursive.
    if isinstance(schema, list):
        return [_inlined(part, definitions) for part in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inlined(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    return {key: _inlined(value, definitions) for key, value in schema.items()}


def _flattened(alternatives: list[dict]) -> list[dict]:
    # The five sdk_event formats form a union of their own within the union on type.
    flat = []
    for schema in alternatives:
        flat += _flattened(schema["oneOf"]) if set(schema) == {"oneOf"} else [schema]
    return flat


def _without_project_id(schema: dict) -> dict:
    properties = {k: v for k, v in schema["properties"].items() if k != "project_id"}
    required = [name for name in schema["required"] if name != "project_id"]
    return {**schema, "properties": properties, "required": required}


def _item_schema() -> dict:
    """The queue item union's JSON Schema as the API takes it: project_id comes from the URL.
    Its discriminator is dropped: an OpenAPI mapping cannot name the five sdk_event formats
    that share one type."""
    schema = QUEUE_ITEM.json_schema()
    definitions = schema.pop("$defs")
    items = _flattened(_inlined(schema["oneOf"], definitions))
    return {
        "description": "One queue item of docs/formats.md; project_id comes from the URL. "
        f"At most {MAX_ITEM_BYTES} bytes as JSON.",
        "oneOf": [_without_project_id(item) for item in items],
    }


_ITEM_SCHEMA = _item_schema()
EVENTS_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ITEM_SCHEMA,
                    {
                        "type": "array",
                        "items": _ITEM_SCHEMA,
                        "minItems": 1,
                        "maxItems": MAX_ITEMS_PER_POST,
                    },
                ]
            },
            "example": {
                "type": "session_error",
                "code": "WEBRTC_CONNECTION_FAILED",
                "message": "Peer connection failed",
                "session_id": "sess_123",
            },
        }
    },
}
