"""POST /projects/{id}/events: validated like the worker would, enqueued all or nothing."""

from __future__ import annotations

import json

import orjson
import pytest
from django.test import Client

from errorsink.ingest.formats import normalise_item
from errorsink.ingest.queue import queue_name, redis_client
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db

ITEM = {
    "type": "session_error",
    "code": "WEBRTC_CONNECTION_FAILED",
    "message": "Peer connection failed",
    "session_id": "browser-1",
}


def _queued() -> list[dict]:
    # LPUSH puts the newest at the head; the worker reads from the tail, so reverse for FIFO.
    return [orjson.loads(raw) for raw in reversed(redis_client().lrange(queue_name(), 0, -1))]


def test_it_enqueues_one_item_with_the_urls_project_and_an_event_id(api, project):
    response = api.post(f"/projects/{project.id}/events", {**ITEM, "project_id": "forged"})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    [queued] = _queued()
    assert queued["project_id"] == str(project.id)
    assert queued["event_id"] == body["event_ids"][0]
    assert queued["event_id"].startswith("sha256:")
    # The worker will read exactly this item as valid.
    assert normalise_item(orjson.dumps(queued)).event_id == queued["event_id"]


def test_it_enqueues_a_list_in_order_and_keeps_given_event_ids(api, project):
    items = [{**ITEM, "event_id": f"mine-{i}"} for i in range(3)]
    items.append({"type": "agent_error", "message": "legacy"})
    body = api.post(f"/projects/{project.id}/events", items).json()
    assert body["accepted"] == 4
    assert body["event_ids"][:3] == ["mine-0", "mine-1", "mine-2"]
    assert [q["event_id"] for q in _queued()] == body["event_ids"]


def test_it_gives_the_same_event_id_to_the_same_item_posted_twice(api, project):
    first = api.post(f"/projects/{project.id}/events", ITEM).json()["event_ids"]
    second = api.post(f"/projects/{project.id}/events", [ITEM]).json()["event_ids"]
    assert first == second


def test_it_accepts_a_warning_with_bad_metrics_as_the_worker_stores_it(api, project):
    warning = {"type": "session_warning", "code": 31003, "session_id": "browser-1",
               "metrics": {"packet_loss_pct": -4, "rtt_ms": "slow", "jitter_ms": 12}}  # fmt: skip
    response = api.post(f"/projects/{project.id}/events", warning)
    assert response.status_code == 202
    [queued] = _queued()
    assert queued["metrics"] == warning["metrics"]  # enqueued as posted
    assert normalise_item(orjson.dumps(queued)).details == {
        "metrics": {"jitter_ms": 12},
        "metric_problems": {"packet_loss_pct": "-4 is below 0",
                            "rtt_ms": 'must be a number, got string "slow"'},
    }  # fmt: skip


def test_it_accepts_a_hangup_whose_cause_the_sdks_default_gives(api, project):
    call = {"state": "hangup", "prevState": "ringing"}
    hangup = {"type": "sdk_event", "sdk": "telnyx", "name": "telnyx.notification",
              "session_id": "browser-1", "event": {"type": "callUpdate", "call": call}}  # fmt: skip
    assert api.post(f"/projects/{project.id}/events", hangup).status_code == 202
    [queued] = _queued()
    assert normalise_item(orjson.dumps(queued)).code == "USER_BUSY"
    del hangup["event"]["call"]["prevState"]
    error = assert_envelope(api.post(f"/projects/{project.id}/events", hangup), 422,
                            "VALIDATION_ERROR")  # fmt: skip
    assert error["details"]["item"] == "missing required field 'event.call.cause'"


def test_it_refuses_the_whole_batch_naming_each_bad_item(api, project):
    items = [ITEM, {"type": "nope"}, "not an object", {**ITEM, "code": 5}]
    response = api.post(f"/projects/{project.id}/events", items)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert set(error["details"]) == {"items[1]", "items[2]", "items[3]"}
    assert "nope" in error["details"]["items[1]"]
    assert _queued() == []


def test_it_names_a_single_bad_item(api, project):
    response = api.post(f"/projects/{project.id}/events", {"type": "session_error"})
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert list(error["details"]) == ["item"]


def test_it_accepts_1000_items_and_refuses_1001(api, project):
    items = [{**ITEM, "event_id": f"bulk-{i}"} for i in range(1001)]
    response = api.post(f"/projects/{project.id}/events", items)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert "1000" in error["details"]["body"]
    assert _queued() == []
    assert api.post(f"/projects/{project.id}/events", items[:1000]).json()["accepted"] == 1000
    assert len(_queued()) == 1000


@pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null"])
def test_it_refuses_a_body_that_is_no_item(api, project, body):
    response = api.post(f"/projects/{project.id}/events", body)
    assert_envelope(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"type": NaN}', b"\xff\xfe"])
def test_it_answers_400_for_a_body_that_is_not_json(api, project, body):
    response = api.post(f"/projects/{project.id}/events", body)
    error = assert_envelope(response, 400, "BAD_REQUEST")
    assert "JSON" in error["message"]


def test_it_refuses_an_item_over_64_kib(api, project):
    response = api.post(f"/projects/{project.id}/events", {**ITEM, "stack": "x" * 70_000})
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert "bytes" in error["details"]["item"]


def test_it_answers_413_for_a_body_over_the_upload_limit(api, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post(f"/projects/{project.id}/events", {**ITEM, "stack": "x" * 2000})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_it_refuses_an_item_nested_too_deep_to_store_with_422(api, project):
    context: dict = {"leaf": True}
    for _ in range(300):
        context = {"inner": context}
    body = json.dumps({**ITEM, "event_id": "deep", "customer_context": context})
    response = api.post(f"/projects/{project.id}/events", body)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert "cannot be stored" in error["details"]["item"]
    assert _queued() == []


def test_it_publishes_every_queue_item_format_as_the_request_body():
    document = Client(HTTP_HOST="localhost").get("/api/v1/openapi.json").json()
    post = document["paths"]["/api/v1/projects/{project_id}/events"]["post"]
    one, many = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert many["items"] == one and many["maxItems"] == 1000
    formats = {schema["title"]: schema for schema in one["oneOf"]}
    assert list(formats) == ["SessionError", "AgentError", "SessionWarning", "SessionEnd", "Turn",
                             "TelnyxError", "TelnyxWarning", "TelnyxHangup", "OneBuddError",
                             "GecxError", "SentryEvent"]  # fmt: skip
    # The project comes from the URL, so no item names it.
    assert all("project_id" not in schema["properties"] for schema in formats.values())
    assert formats["SessionError"]["required"] == ["type", "code", "message", "session_id"]
    [metrics, _null] = formats["SessionWarning"]["properties"]["metrics"]["anyOf"]
    assert metrics["properties"]["mos"] == {"type": "number", "minimum": 1, "maximum": 5}
    assert "details.metric_problems" in metrics["description"]
    # A hangup may leave out its cause where the SDK's default applies; the schema says so.
    call = formats["TelnyxHangup"]["properties"]["event"]["properties"]["call"]
    assert "cause" in call["properties"] and "cause" not in call.get("required", [])
    assert "prevState" in call["properties"]["cause"]["description"]
    onebudd = formats["OneBuddError"]["properties"]
    assert (onebudd["sdk"]["const"], onebudd["name"]["const"]) == ("onebudd", "error")
    assert onebudd["event"]["properties"]["payload"]["required"] == ["code"]
    assert "$ref" not in json.dumps(post["requestBody"])


@pytest.mark.parametrize(
    "change",
    [{"event_id": "e\u00001"}, {"event_id": " "}, {"session_id": "s" * 201},
     {"session_id": "\t"}],
)  # fmt: skip
def test_ids_the_worker_could_not_store_are_refused_here(api, project, change):
    # What the API accepts, the worker stores (issue 14): the same rule, at the door.
    response = api.post(f"/projects/{project.id}/events", {**ITEM, **change})
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert next(iter(change)) in error["details"]["item"]
    assert _queued() == []


def test_large_integers_in_the_context_are_stored_exactly_or_refused(api, project, reader):
    """JSON numbers past 2**53 keep every digit up to 64 bits; past that they cannot be
    stored exactly, so the item is refused with the reason, never stored rounded."""
    from errorsink.sessions.models import Event
    from tests.errorsink.conftest import drain

    exact = {"order": 2**63 - 1, "account": 2**53 + 1, "negative": -(2**63)}
    body = json.dumps({**ITEM, "event_id": "big-ints", "customer_context": exact})
    response = api.post(f"/projects/{project.id}/events", body)
    assert response.status_code == 202, response.content
    drain(reader)
    assert Event.objects.get(event_id="big-ints").customer_context == exact
    read = api.get(f"/projects/{project.id}/session-errors").content
    assert b'"order":9223372036854775807' in read.replace(b" ", b"")

    too_big = json.dumps({**ITEM, "customer_context": {"n": 2**64 * 10}})
    response = api.post(f"/projects/{project.id}/events", too_big)
    assert response.status_code == 422 and "past 64 bits" in response.content.decode()
