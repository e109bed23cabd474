"""An event as every reader outside the database sees it (the API, alert bodies): its public
fields, with the code's catalog entry beside them."""

from __future__ import annotations

from errorsink.catalog import lookup_event
from errorsink.sessions.models import Event

# Every column but the project (implied by the route), the raw item and the fingerprint.
PUBLIC_EVENT_FIELDS = (
    "id", "event_id", "session_id", "kind", "code", "name", "message", "occurred_at",
    "received_at", "source", "severity", "recoverable", "build_id", "stack",
    "customer_context", "details", "item_type",
)  # fmt: skip


def event_out(event: Event) -> dict:
    """The event's public fields; JSON columns that hold something other than an object (from
    before ingest checked) read as none."""
    out = {name: getattr(event, name) for name in PUBLIC_EVENT_FIELDS}
    if not isinstance(out["details"], dict):
        out["details"] = {}
    if not isinstance(out["customer_context"], dict):
        out["customer_context"] = None
    out["catalog"] = lookup_event(event.code, out["details"], kind=event.kind)
    return out
