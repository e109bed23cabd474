"""Events stored the way the worker stores them (normalised, grouped, counted), without a queue."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import orjson

from errorsink.ingest.batch import batch_rows
from errorsink.ingest.persist import events_persist

_numbers = itertools.count(1)


def error_item(project_id, **fields) -> dict:
    number = next(_numbers)
    return {
        "type": "session_error", "project_id": str(project_id), "event_id": f"err-{number}",
        "session_id": "sess-1", "code": "AGENT_HANDLER_FAILED",
        "message": f"Handler failed after {number} ms", **fields,
    }  # fmt: skip


def items_store(items: list[dict], *, received_at: datetime | None = None) -> None:
    """Normalise and persist, as one batch of the worker."""
    batch = batch_rows([orjson.dumps(item) for item in items],
                       received_at=received_at or datetime.now(UTC))  # fmt: skip
    assert not batch.rejected, batch.rejected
    events_persist(batch.rows)
