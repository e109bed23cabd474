"""The batch step alone: raw items in, rows and rejections out, with neither database nor Redis
(no django_db mark: any query would fail the test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from errorsink.ingest.batch import Rejected, batch_rows
from tests.errorsink.ingest.test_formats import PROJECT, TELNYX_HANGUP, session_error
from tests.errorsink.ingest.test_pipeline import UNKNOWN_PROJECT

pytestmark = pytest.mark.pure

NOW = datetime(2026, 6, 19, 12, 30, tzinfo=UTC)


def test_it_turns_a_mixed_batch_into_rows_and_rejections_in_item_order():
    hangup = {"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.notification",
              "project_id": PROJECT, "session_id": "s2", "event_id": "h1",
              "event": json.loads(TELNYX_HANGUP)}  # fmt: skip
    deep: dict = {"leaf": True}
    for _ in range(300):
        deep = {"inner": deep}
    items = [
        session_error(event_id="e1", occurred_at="2026-06-19T12:00:00Z"),
        b"{not json",
        orjson.dumps(hangup),
        orjson.dumps({"type": "mystery", "project_id": PROJECT}),
        session_error(event_id="e2", project_id=UNKNOWN_PROJECT),  # persist's to refuse
        json.dumps({**orjson.loads(session_error(event_id="e3")), "customer_context": deep}),
        session_error(event_id="e4", message="nul \x00 here"),
    ]
    items = [item.encode() if isinstance(item, str) else item for item in items]

    batch = batch_rows(items, received_at=NOW)

    assert [(row.seq, row.event_id, row.kind, row.code) for row in batch.rows] == [
        (0, "e1", "error", "AGENT_HANDLER_FAILED"),
        (2, "h1", "termination", "USER_BUSY"),
        (4, "e2", "error", "AGENT_HANDLER_FAILED"),
        (6, "e4", "error", "AGENT_HANDLER_FAILED"),
    ]
    first, hangup_row, unknown, nul = batch.rows
    assert (first.project_id, first.session_id, first.received_at) == (PROJECT, "s1", NOW)
    assert first.occurred_at == datetime(2026, 6, 19, 12, tzinfo=UTC)
    assert first.raw == items[0].decode()
    assert json.loads(hangup_row.details)["termination"]["sip_code"] == 486
    assert (unknown.project_id, unknown.occurred_at) == (UNKNOWN_PROJECT, NOW)
    assert nul.message == "nul \ufffd here"
    assert [reason.split(":")[0] for _, reason in batch.rejected] == [
        "item is not valid JSON",
        'unknown type "mystery"; expected one of agent_error, sdk_event, session_end, '
        "session_error, session_warning, turn",
        "cannot be stored",
    ]
    assert [item for item, _ in batch.rejected] == [items[1], items[3], items[5]]
    assert all(isinstance(rejected, Rejected) for rejected in batch.rejected)
