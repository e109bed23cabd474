"""Queue items of every format (the seeds' own examples first) normalise, or fail with a reason."""

from datetime import UTC, datetime

import orjson
import pytest

from errorsink.catalog import lookup
from errorsink.ingest.formats import (
    MAX_ITEM_BYTES,
    BadItem,
    NormalisedEvent,
    derive_event_id,
    normalise,
    normalise_item,
    parse_item,
)

pytestmark = pytest.mark.pure

PROJECT = "6f1c6c8e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"
NOON = datetime(2026, 6, 19, 12, 0, tzinfo=UTC)

# Seed 000, verbatim; only its project_id placeholder must become a real UUID.
SEED_000_SESSION_ERROR = r"""{
"type": "session_error",
"code": "AGENT_CHILD_CRASHED",
"message": "Sorry, something went wrong.",
"session_id": "<orchestrator-session-id>",
"project_id": "<uuid>",
"build_id": "<uuid>",
"stack": "Error: …\n at …",
"recoverable": false,
"customer_context": { "userId": "u_123" },
"occurred_at": "2026-06-19T12:00:00.000Z"
}"""

# Seed 000, verbatim: what older runners sent.
SEED_000_AGENT_ERROR = """{ "type": "agent_error", "message": "…" }"""

# Seed 001, verbatim: a OneBudd error event, wrapped below as an sdk_event.
SEED_001_ONEBUDD_ERROR = """{
"type": "error",
"version": "1",
"session_id": "sess_abc123",
"timestamp": 1699900000000,
"payload": {
"code": "stt_failed",
"message": "Speech recognition failed: invalid audio format",
"fatal": false
}
}"""

# Seed 004's payload shapes (ITelnyxStandardErrorEvent, ITelnyxMediaRecoveryErrorEvent,
# ITelnyxWarningEvent, a callUpdate notification) filled with the seed's own values.
TELNYX_ERROR = """{
"error": {"code": 45002, "name": "WEBSOCKET_ERROR", "message": "Connection to server lost"},
"sessionId": "tx-session-1"
}"""
TELNYX_MEDIA_RECOVERY_ERROR = """{
"error": {"code": 42001, "name": "MEDIA_MICROPHONE_PERMISSION_DENIED",
          "message": "Microphone access denied"},
"sessionId": "tx-session-1",
"callId": "call-7",
"recoverable": true,
"retryDeadline": 1781870400000
}"""
TELNYX_WARNING = """{
"warning": {"code": 31002, "name": "HIGH_JITTER", "message": "High jitter detected",
            "description": "Jitter stayed above threshold",
            "causes": ["Network congestion"], "solutions": ["Use a wired connection"]},
"sessionId": "tx-session-1",
"callId": "call-7"
}"""
TELNYX_HANGUP = """{
"type": "callUpdate",
"call": {"id": "call-7", "state": "hangup", "cause": "USER_BUSY", "causeCode": 17,
         "sipCode": 486, "sipReason": "Busy Here"}
}"""

# Seed 003's ChatSdkError fields for one of its codes.
GECX_ERROR = """{
"name": "ChatSdkError",
"code": "TOKEN_ENDPOINT_FAILED",
"message": "Token endpoint request failed (network or non-2xx).",
"userMessage": "We could not connect. Please try again.",
"developerHint": "Verify endpoint reachability and CORS.",
"severity": "high",
"retryable": true,
"docsUrl": "https://docs.example.com/reference/error-codes#token_endpoint_failed"
}"""


def sdk_item(sdk: str, name: str, event_json: str, **wrapper: str) -> str:
    """An sdk_event queue item around an SDK event given as JSON text, kept as it is."""
    fields = {"type": "sdk_event", "sdk": sdk, "name": name, "project_id": PROJECT, **wrapper}
    return orjson.dumps(fields).decode()[:-1] + ', "event": ' + event_json + "}"


def item(**fields) -> bytes:
    return orjson.dumps({"project_id": PROJECT, **fields})


def session_error(**fields) -> bytes:
    base = {"type": "session_error", "code": "AGENT_HANDLER_FAILED", "message": "boom"}
    return item(**{**base, "session_id": "s1", **fields})


def reason_of(data: bytes | str) -> str:
    with pytest.raises(BadItem) as caught:
        normalise_item(data)
    return caught.value.reason


# ---------------------------------------------------------------------------------------------
# The seeds' examples


def test_it_normalises_the_seed_session_error():
    event = normalise_item(
        SEED_000_SESSION_ERROR.replace('"project_id": "<uuid>"', f'"project_id": "{PROJECT}"')
    )
    assert isinstance(event, NormalisedEvent)
    assert (event.project_id, event.session_id) == (PROJECT, "<orchestrator-session-id>")
    assert (event.kind, event.code, event.name) == (
        "error",
        "AGENT_CHILD_CRASHED",
        "AGENT_CHILD_CRASHED",
    )
    assert (event.source, event.severity, event.recoverable) == ("agent", "high", False)
    assert event.message == "Sorry, something went wrong."
    assert event.occurred_at == NOON
    assert event.build_id == "<uuid>"
    assert event.stack == "Error: …\n at …"
    assert event.customer_context == {"userId": "u_123"}
    assert event.details == {}
    assert event.item_type == "session_error"
    assert event.event_id.startswith("sha256:") and len(event.event_id) == 7 + 64
    assert event.raw["project_id"] == PROJECT


def test_it_maps_the_seed_legacy_agent_error_to_agent_child_crashed():
    event = normalise(parse_item(SEED_000_AGENT_ERROR), project_id=PROJECT)
    assert (event.kind, event.code, event.name) == (
        "error",
        "AGENT_CHILD_CRASHED",
        "AGENT_CHILD_CRASHED",
    )
    assert (event.source, event.severity, event.recoverable) == ("agent", "high", False)
    assert (event.message, event.session_id, event.occurred_at) == ("…", None, None)
    assert event.item_type == "agent_error"


def test_it_refuses_the_legacy_agent_error_on_the_queue_without_a_project():
    assert reason_of(SEED_000_AGENT_ERROR) == "missing required field 'project_id'"


def test_it_normalises_the_seed_onebudd_error():
    event = normalise_item(sdk_item("onebudd", "error", SEED_001_ONEBUDD_ERROR))
    assert (event.kind, event.code, event.name) == ("error", "stt_failed", "stt_failed")
    assert (event.source, event.severity, event.recoverable) == ("client", "medium", True)
    assert event.message == "Speech recognition failed: invalid audio format"
    assert event.session_id == "sess_abc123"
    assert event.occurred_at == datetime(2023, 11, 13, 18, 26, 40, tzinfo=UTC)
    assert event.details == {"sdk": "onebudd", "fatal": False}


def test_it_makes_a_fatal_onebudd_error_high_and_unrecoverable():
    fatal = SEED_001_ONEBUDD_ERROR.replace('"stt_failed"', '"server_error"').replace(
        '"fatal": false', '"fatal": true'
    )
    event = normalise_item(sdk_item("onebudd", "error", fatal))
    assert (event.code, event.severity, event.recoverable) == ("server_error", "high", False)


def test_it_normalises_a_telnyx_error():
    event = normalise_item(sdk_item("telnyx", "telnyx.error", TELNYX_ERROR, session_id="orch-1"))
    assert (event.kind, event.code, event.name) == ("error", "45002", "WEBSOCKET_ERROR")
    assert (event.source, event.severity, event.recoverable) == ("client", "high", False)
    assert event.message == "Connection to server lost"
    assert (event.session_id, event.occurred_at) == ("orch-1", None)
    assert event.details == {"sdk": "telnyx", "sessionId": "tx-session-1"}


def test_it_keeps_recoverable_of_a_telnyx_media_recovery_error():
    event = normalise_item(sdk_item("telnyx", "telnyx.error", TELNYX_MEDIA_RECOVERY_ERROR))
    assert (event.code, event.name) == ("42001", "MEDIA_MICROPHONE_PERMISSION_DENIED")
    assert event.recoverable is True
    assert event.session_id == "tx-session-1"  # no wrapper session: the SDK's own
    assert event.details == {"sdk": "telnyx", "sessionId": "tx-session-1", "callId": "call-7"}


def test_a_code_past_its_limit_is_refused_not_cut_into_another():
    """Cut, "A…" * 129 and "A…" * 130 would become one code, and one issue."""
    with pytest.raises(BadItem, match=r"field 'code' must be at most 128 characters, got 129"):
        normalise_item(session_error(code="C" * 129))


@pytest.mark.parametrize(
    ("error", "event_recoverable", "recoverable"),
    [
        ('{"code": 45002, "fatal": false}', None, True),  # the SDK reconnects by itself
        ('{"code": 45003, "fatal": true}', None, False),
        ('{"code": 42001, "fatal": true}', True, False),  # fatal decides where both are given
        ('{"code": 42001, "fatal": false}', True, True),
        ('{"code": 47001, "fatal": true}', None, False),  # over the catalog's recoverable code
        ('{"code": 40001, "fatal": null}', None, False),  # null is absence: the old rule
    ],
)
def test_it_takes_recoverable_from_a_telnyx_errors_fatal(error, event_recoverable, recoverable):
    extra = "" if event_recoverable is None else ', "recoverable": true'
    event = normalise_item(
        sdk_item("telnyx", "telnyx.error", f'{{"error": {error}, "sessionId": "tx"{extra}}}')
    )
    assert event.recoverable is recoverable
    fatal = orjson.loads(error)["fatal"]
    assert event.details.get("fatal", "absent") == ("absent" if fatal is None else fatal)


def test_it_keeps_the_catalogs_default_out_of_a_telnyx_error_without_fatal():
    # Before SDK 2.27.2 there is no fatal: recoverable only where the event says so.
    assert lookup("47001", sdk="telnyx").recoverable is True
    event = normalise_item(sdk_item("telnyx", "telnyx.error", '{"error": {"code": 47001}}'))
    assert event.recoverable is False
    assert "fatal" not in event.details


def test_it_normalises_a_telnyx_warning():
    event = normalise_item(
        sdk_item(
            "telnyx",
            "telnyx.warning",
            TELNYX_WARNING,
            session_id="orch-1",
            occurred_at="2026-06-19T14:00:00+02:00",
        )
    )
    assert (event.kind, event.code, event.name) == ("warning", "31002", "HIGH_JITTER")
    assert (event.source, event.severity, event.recoverable) == ("client", "medium", True)
    assert (event.message, event.session_id, event.occurred_at) == (
        "High jitter detected",
        "orch-1",
        NOON,
    )
    assert event.details == {
        "sdk": "telnyx",
        "sessionId": "tx-session-1",
        "callId": "call-7",
        "description": "Jitter stayed above threshold",
        "causes": ["Network congestion"],
        "solutions": ["Use a wired connection"],
    }


def test_it_reads_a_telnyx_name_of_both_kinds_as_the_events_kind():
    # SDK 2.27.2 moved SESSION_NOT_REATTACHED from warning 35001 to error 48501.
    name = '{"code": "SESSION_NOT_REATTACHED", "message": "Active call lost after reconnect"}'
    error = normalise_item(sdk_item("telnyx", "telnyx.error", f'{{"error": {name}}}'))
    assert (error.kind, error.code, error.name, error.severity) == (
        "error", "48501", "SESSION_NOT_REATTACHED", "high",
    )  # fmt: skip
    warning = normalise_item(sdk_item("telnyx", "telnyx.warning", f'{{"warning": {name}}}'))
    assert (warning.kind, warning.code, warning.severity) == ("warning", "35001", "medium")
    older = normalise_item(
        item(type="session_warning", session_id="s1", code="SESSION_NOT_REATTACHED")
    )
    assert older.code == "35001"


@pytest.mark.parametrize(
    ("name", "event", "code", "catalog_name"),
    [
        ("telnyx.error", '{"error": {"code": 47001}}', "47001", "ICE_RESTART_FAILED"),
        ("telnyx.error", '{"error": {"name": "PEER_CLOSED_DURING_INIT"}}', "44005",
         "PEER_CLOSED_DURING_INIT"),
        ("telnyx.warning", '{"warning": {"code": "LOW_INBOUND_AUDIO"}}', "31006",
         "LOW_INBOUND_AUDIO"),
        ("telnyx.warning", '{"warning": {"code": 36005}}', "36005",
         "RECONNECTION_FAILED_WITH_NO_AUTO_RECONNECT"),
    ],
)  # fmt: skip
def test_it_knows_the_codes_of_telnyx_sdk_227(name, event, code, catalog_name):
    stored = normalise_item(sdk_item("telnyx", name, event))
    assert (stored.code, stored.name) == (code, catalog_name)
    assert stored.message == lookup(code, sdk="telnyx").description


def test_it_normalises_a_telnyx_hangup_into_a_termination():
    event = normalise_item(
        sdk_item("telnyx", "telnyx.notification", TELNYX_HANGUP, session_id="orch-1")
    )
    assert (event.kind, event.code, event.name) == ("termination", "USER_BUSY", "USER_BUSY")
    assert (event.source, event.severity, event.recoverable) == ("client", "low", False)
    assert event.session_id == "orch-1"
    assert event.details == {
        "sdk": "telnyx",
        "callId": "call-7",
        "termination": {
            "cause": "USER_BUSY",
            "cause_code": 17,
            "sip_code": 486,
            "sip_reason": "Busy Here",
            "close_code": None,
            "duration_ms": None,
        },
    }


def hangup(**call) -> NormalisedEvent:
    event = {"type": "callUpdate", "call": {"id": "call-7", "state": "hangup", **call}}
    return normalise_item(
        sdk_item("telnyx", "telnyx.notification", orjson.dumps(event).decode(), session_id="o")
    )


@pytest.mark.parametrize(
    ("prev_state", "cause", "cause_code", "default"),
    [
        ("new", "USER_BUSY", 17, "before answer"),
        ("ringing", "USER_BUSY", 17, "before answer"),
        ("early", "USER_BUSY", 17, "before answer"),
        ("recovering", "USER_BUSY", 17, "before answer"),  # before Active in the SDK's enum
        ("active", "NORMAL_CLEARING", 16, "after answer"),
        ("held", "NORMAL_CLEARING", 16, "after answer"),
    ],
)
def test_it_gives_a_telnyx_hangup_without_a_cause_the_sdks_default(
    prev_state, cause, cause_code, default
):
    event = hangup(prevState=prev_state)
    assert (event.kind, event.code, event.name) == ("termination", cause, cause)
    assert event.details["termination"] == {
        "cause": cause, "cause_code": cause_code, "sip_code": None, "sip_reason": None,
        "close_code": None, "duration_ms": None,
    }  # fmt: skip
    assert (event.details["prevState"], event.details["cause_default"]) == (prev_state, default)
    assert "cause" not in event.raw["event"]["call"]  # the item is kept as it came


def test_it_keeps_a_telnyx_hangups_own_cause_and_codes_whatever_its_state():
    event = hangup(prevState="ringing", cause="CALL_REJECTED", causeCode=21, sipCode=603)
    assert (event.code, event.details["termination"]["cause_code"]) == ("CALL_REJECTED", 21)
    assert event.details["prevState"] == "ringing" and "cause_default" not in event.details
    # A cause without its code keeps both as they came: no default code beside another cause.
    event = hangup(prevState="active", cause="PURGE")
    assert (event.code, event.details["termination"]["cause_code"]) == ("PURGE", None)


@pytest.mark.parametrize(
    "call",
    [
        {},  # no state: answered or not is unknown
        {"prevState": "hangup"},
        {"prevState": "ACTIVE"},
        {"prevState": ["active"]},
        {"prevState": "active", "causeCode": 21},  # a default would contradict what came
        {"prevState": "active", "sipCode": 486},
        {"prevState": "ringing", "sipReason": "Decline"},
    ],
)
def test_it_refuses_a_telnyx_hangup_without_a_cause_it_cannot_default(call):
    with pytest.raises(BadItem, match=r"missing required field 'event\.call\.cause'"):
        hangup(**call)


def test_it_normalises_a_gecx_chat_sdk_error():
    event = normalise_item(sdk_item("gecx", "ChatSdkError", GECX_ERROR, session_id="chat-1"))
    assert (event.kind, event.code, event.name) == (
        "error",
        "TOKEN_ENDPOINT_FAILED",
        "TOKEN_ENDPOINT_FAILED",
    )
    assert (event.source, event.severity, event.recoverable) == ("client", "high", True)
    assert event.message == "Token endpoint request failed (network or non-2xx)."
    assert (event.session_id, event.occurred_at) == ("chat-1", None)
    assert event.details == {
        "sdk": "gecx",
        "retryable": True,
        "userMessage": "We could not connect. Please try again.",
        "developerHint": "Verify endpoint reachability and CORS.",
        "docsUrl": "https://docs.example.com/reference/error-codes#token_endpoint_failed",
    }


def test_it_takes_gecx_severity_and_retryable_from_the_event_over_the_catalog():
    changed = GECX_ERROR.replace('"high"', '"critical"').replace(
        '"retryable": true', '"retryable": false'
    )
    event = normalise_item(sdk_item("gecx", "ChatSdkError", changed))
    assert (event.severity, event.recoverable, event.details["retryable"]) == (
        "critical",
        False,
        False,
    )


def test_it_falls_back_to_the_catalog_for_a_bare_gecx_error():
    event = normalise_item(sdk_item("gecx", "ChatSdkError", '{"code": "COMMERCE_PII_LEAK"}'))
    assert (event.severity, event.recoverable) == ("critical", False)
    assert event.message == lookup("COMMERCE_PII_LEAK", sdk="gecx").description


# ---------------------------------------------------------------------------------------------
# The other queue types and their defaults


@pytest.mark.parametrize("code", [31002, "31002", "HIGH_JITTER"])
def test_it_accepts_a_session_warning_code_as_number_or_name(code):
    event = normalise_item(
        item(
            type="session_warning",
            session_id="s1",
            code=code,
            metrics={"rtt_ms": 120, "jitter_ms": 45.5, "packet_loss_pct": 2.5, "mos": 3.1, "x": 1},
        )
    )
    assert (event.kind, event.code, event.name) == ("warning", "31002", "HIGH_JITTER")
    assert (event.source, event.severity, event.recoverable) == ("runner", "medium", True)
    assert event.message == lookup("31002", sdk="telnyx").description
    assert event.details == {
        "metrics": {"rtt_ms": 120, "jitter_ms": 45.5, "packet_loss_pct": 2.5, "mos": 3.1}
    }


def warning_with(metrics) -> NormalisedEvent:
    return normalise_item(
        item(type="session_warning", session_id="s1", code="LOW_MOS", metrics=metrics)
    )


def test_it_stores_a_warning_with_bad_metrics_without_them_and_says_why():
    metrics = {"mos": 7.2, "packet_loss_pct": "high", "rtt_ms": 120, "jitter_ms": -0.5}
    event = warning_with(metrics)
    assert (event.kind, event.code, event.recoverable) == ("warning", "31004", True)
    assert event.details == {
        "metrics": {"rtt_ms": 120},
        "metric_problems": {
            "mos": "7.2 is above 5",
            "packet_loss_pct": 'must be a number, got string "high"',
            "jitter_ms": "-0.5 is below 0",
        },
    }
    assert event.raw["metrics"] == metrics  # the item itself is kept as it came


@pytest.mark.parametrize(
    ("metrics", "problems"),
    [
        ({"jitter_ms": "45"}, {"jitter_ms": 'must be a number, got string "45"'}),
        ({"mos": True}, {"mos": "must be a number, got boolean true"}),
        ({"rtt_ms": [1], "mos": {}}, {"rtt_ms": "must be a number, got array [1]",
                                      "mos": "must be a number, got object {}"}),
        ({"packet_loss_pct": -3}, {"packet_loss_pct": "-3 is below 0"}),
        ({"packet_loss_pct": 100.5}, {"packet_loss_pct": "100.5 is above 100"}),
        ({"mos": 0.9}, {"mos": "0.9 is below 1"}),
        ({"rtt_ms": 600_001}, {"rtt_ms": "600001 is above 600000"}),
        ({"rtt_ms": 1e300}, {"rtt_ms": "1e+300 is above 600000"}),
    ],
)  # fmt: skip
def test_it_says_why_each_bad_metric_was_left_out(metrics, problems):
    assert warning_with(metrics).details == {"metrics": {}, "metric_problems": problems}


def test_it_keeps_metrics_at_the_edges_of_their_ranges():
    edges = {"rtt_ms": 600_000, "jitter_ms": 0, "packet_loss_pct": 100, "mos": 1}
    assert warning_with(edges).details == {"metrics": edges}
    assert warning_with({"mos": 5, "packet_loss_pct": 0.0}).details == {
        "metrics": {"mos": 5, "packet_loss_pct": 0.0}
    }


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [([1], "must be an object, got array [1]"), ("x", 'must be an object, got string "x"'),
     (4, "must be an object, got number 4")],
)  # fmt: skip
def test_it_stores_a_warning_whose_metrics_are_no_object(metrics, problem):
    assert warning_with(metrics).details == {"metric_problems": {"metrics": problem}}


def test_it_reads_a_null_metric_or_null_metrics_as_not_sent():
    assert warning_with({"mos": None, "rtt_ms": 80}).details == {"metrics": {"rtt_ms": 80}}
    assert warning_with(None).details == {}


def test_it_keeps_an_unknown_session_warning_code_as_it_came():
    event = normalise_item(item(type="session_warning", session_id="s1", code="ECHO", message="m"))
    assert (event.code, event.name, event.severity, event.message) == ("ECHO", "ECHO", "low", "m")
    assert event.details == {}
    assert normalise_item(item(type="session_warning", session_id="s1", code=39999)).code == "39999"


def test_it_normalises_a_session_end():
    event = normalise_item(
        item(
            type="session_end",
            session_id="s1",
            cause="NORMAL_CLEARING",
            cause_code=16,
            sip_code=200,
            close_code=1000,
            duration_ms=61234,
            occurred_at="2026-06-19T12:00:00Z",
        )
    )
    assert (event.kind, event.code, event.name) == (
        "termination",
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
    )
    assert (event.source, event.severity, event.recoverable) == ("runner", "low", False)
    assert event.occurred_at == NOON
    assert event.details == {
        "termination": {
            "cause": "NORMAL_CLEARING",
            "cause_code": 16,
            "sip_code": 200,
            "sip_reason": None,
            "close_code": 1000,
            "duration_ms": 61234,
        }
    }


def test_it_keeps_an_unknown_session_error_code_with_default_severity():
    event = normalise_item(session_error(code="BANANA_SPLIT"))
    assert (event.kind, event.code, event.name) == ("error", "BANANA_SPLIT", "BANANA_SPLIT")
    assert (event.source, event.severity, event.recoverable) == ("runner", "medium", None)


@pytest.mark.parametrize(
    ("code", "source", "kind"),
    [
        ("AGENT_HANDLER_FAILED", "agent", "error"),
        ("RUNNER_INTERNAL", "runner", "error"),
        ("SESSION_END_FAILED", "runner", "error"),
        ("SESSION_IDLE_TIMEOUT", "runner", "info"),
        ("IDLE_TIMEOUT_CALLBACK_TIMED_OUT", "runner", "error"),
        ("PROVISIONING_TIMEOUT", "provisioning", "error"),
        ("WEBRTC_CONNECT_TIMEOUT", "client", "error"),
    ],
)
def test_it_derives_source_and_kind_from_the_code(code, source, kind):
    event = normalise_item(session_error(code=code))
    assert (event.source, event.kind) == (source, kind)


def test_it_lets_an_explicit_source_win():
    assert normalise_item(session_error(source="client")).source == "client"
    event = normalise_item(sdk_item("gecx", "ChatSdkError", GECX_ERROR, source="runner"))
    assert event.source == "runner"


def test_it_lets_an_explicit_recoverable_win_over_the_catalog():
    assert normalise_item(session_error(recoverable=True)).recoverable is True


def test_it_lets_the_wrapper_session_and_time_win_over_the_sdk_events_own():
    event = normalise_item(
        sdk_item(
            "onebudd",
            "error",
            SEED_001_ONEBUDD_ERROR,
            session_id="orch-9",
            occurred_at="2026-06-19T12:00:00Z",
        )
    )
    assert (event.session_id, event.occurred_at) == ("orch-9", NOON)


def test_it_converts_offsets_to_utc():
    event = normalise_item(session_error(occurred_at="2026-06-19T08:00:00.000-04:00"))
    assert event.occurred_at == NOON
    assert event.occurred_at.utcoffset().total_seconds() == 0


def test_it_canonicalises_the_project_id_and_lets_the_keyword_override_it():
    event = normalise_item(session_error(project_id="{" + PROJECT.upper() + "}"))
    assert event.project_id == PROJECT
    other = "00000000-0000-4000-8000-000000000001"
    obj = orjson.loads(session_error())
    event = normalise(obj, project_id=other)
    assert event.project_id == other
    assert event.event_id == derive_event_id({**obj, "project_id": other})
    assert obj["project_id"] == PROJECT  # the caller's object is left alone


def test_it_injects_the_project_for_the_http_api():
    obj = {
        "type": "session_error",
        "code": "WEBRTC_CONNECTION_FAILED",
        "message": "m",
        "session_id": "s",
    }
    event = normalise(obj, project_id=PROJECT)
    assert (event.project_id, event.source) == (PROJECT, "client")


# ---------------------------------------------------------------------------------------------
# Bad items: each is refused with a reason naming what is wrong


def bad(**fields) -> bytes:
    return session_error(**fields)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"type": "session_error",', "item is not valid JSON: "),
        (b"[1, 2]", "item must be a JSON object, got array"),
        (b"42", "item must be a JSON object, got number"),
        (b'"session_error"', "item must be a JSON object, got string"),
        (b"null", "item must be a JSON object, got null"),
        (b'{"type": "\xff"}', "item is not valid UTF-8: invalid start byte at byte 10"),
        (
            item(type="session_panic"),
            'unknown type "session_panic"; expected one of agent_error, sdk_event, session_end, '
            "session_error, session_warning, turn",
        ),
        (item(code="X"), "item has no 'type' field; expected one of "),
        (item(type=3), "field 'type' must be a string, got number"),
        (
            orjson.dumps({"type": "session_error", "code": "X", "message": "m", "session_id": "s"}),
            "missing required field 'project_id'",
        ),
        (bad(project_id="project-1"), "field 'project_id' must be a UUID, got \"project-1\""),
        (bad(project_id=7), "field 'project_id' must be a UUID string, got number"),
        (bad(session_id=None), "missing required field 'session_id'"),
        (bad(session_id=""), "field 'session_id' must not be empty"),
        (bad(session_id=12), "field 'session_id' must be a string, got number"),
        (bad(code=None), "missing required field 'code'"),
        (bad(code=["X"]), "field 'code' must be a string, got array"),
        (bad(message=5), "field 'message' must be a string, got number"),
        (bad(recoverable="no"), "field 'recoverable' must be a boolean, got string"),
        (bad(customer_context=[1]), "field 'customer_context' must be an object, got array"),
        (bad(build_id=1.5), "field 'build_id' must be a string, got number"),
        (bad(stack={"frames": []}), "field 'stack' must be a string, got object"),
        (
            bad(source="kernel"),
            "field 'source' must be one of agent, runner, provisioning, client, got \"kernel\"",
        ),
        (bad(source=True), "field 'source' must be a string, got boolean"),
        (bad(event_id=9), "field 'event_id' must be a string, got number"),
        (bad(event_id="e" * 201), "field 'event_id' must be at most 200 characters, got 201"),
        (
            bad(occurred_at="yesterday"),
            "field 'occurred_at' is not an ISO 8601 time: \"yesterday\"",
        ),
        (
            bad(occurred_at="2026-06-19T12:00:00"),
            "field 'occurred_at' must include a time zone (Z or +hh:mm): \"2026-06-19T12:00:00\"",
        ),
        (
            bad(occurred_at="9999-12-31T23:59:59-01:00"),
            "field 'occurred_at' is out of range in UTC: \"9999-12-31T23:59:59-01:00\"",
        ),
        (
            bad(occurred_at=1781870400000),
            "field 'occurred_at' must be an ISO 8601 string, got number",
        ),
        (
            item(type="session_warning", session_id="s1", code=False),
            "field 'code' must be a code name or number, got boolean",
        ),
        (
            item(type="session_warning", session_id="s1", code=-1),
            "field 'code' must not be negative, got -1",
        ),
        (item(type="session_warning", code="HIGH_RTT"), "missing required field 'session_id'"),
        (item(type="session_end", session_id="s1"), "missing required field 'cause'"),
        (
            item(type="session_end", session_id="s1", cause="PURGE", sip_code="486"),
            "field 'sip_code' must be an integer, got string",
        ),
        (item(type="agent_error"), "missing required field 'message'"),
    ],
)
def test_it_refuses_bad_items_with_a_reason(data, reason):
    assert reason_of(data).startswith(reason)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            sdk_item("telnyx", "telnyx.notification", '{"type": "userMediaError", "error": {}}'),
            'telnyx.notification of type "userMediaError" is not stored; '
            "only a callUpdate whose call.state is 'hangup' is",
        ),
        (
            sdk_item(
                "telnyx", "telnyx.notification", TELNYX_HANGUP.replace('"hangup"', '"active"')
            ),
            "telnyx callUpdate with call.state \"active\" is not stored; only 'hangup' is",
        ),
        (
            sdk_item(
                "telnyx",
                "telnyx.notification",
                '{"type": "callUpdate", "call": {"state": "hangup"}}',
            ),
            "missing required field 'event.call.cause'",
        ),
        (
            sdk_item("twilio", "error", "{}"),
            'unknown sdk "twilio"; expected one of gecx, onebudd, sentry, telnyx',
        ),
        (
            sdk_item("telnyx", "error", "{}"),
            "unknown name \"error\" for sdk 'telnyx'; "
            "expected one of telnyx.error, telnyx.warning, telnyx.notification",
        ),
        (sdk_item("telnyx", "telnyx.error", "[]"), "field 'event' must be an object, got array"),
        (
            sdk_item("telnyx", "telnyx.error", '{"sessionId": "x"}'),
            "missing required field 'event.error'",
        ),
        (
            sdk_item("telnyx", "telnyx.error", '{"error": {"code": true}}'),
            "field 'event.error.code' must be a code name or number, got boolean",
        ),
        (
            sdk_item("telnyx", "telnyx.error", '{"error": {"code": 45002}, "recoverable": "yes"}'),
            "field 'event.recoverable' must be a boolean, got string",
        ),
        (
            sdk_item("telnyx", "telnyx.error", '{"error": {"code": 45002, "fatal": "no"}}'),
            "field 'event.error.fatal' must be a boolean, got string",
        ),
        (
            sdk_item(
                "onebudd",
                "error",
                SEED_001_ONEBUDD_ERROR.replace('"fatal": false', '"fatal": "no"'),
            ),
            "field 'event.payload.fatal' must be a boolean, got string",
        ),
        (
            sdk_item("onebudd", "error", SEED_001_ONEBUDD_ERROR.replace("1699900000000", '"soon"')),
            "field 'event.timestamp' is not an ISO 8601 time: \"soon\"",
        ),
        (
            sdk_item("onebudd", "error", SEED_001_ONEBUDD_ERROR.replace("1699900000000", "1e300")),
            "field 'event.timestamp' is not a usable epoch-milliseconds time",
        ),
        (
            sdk_item("onebudd", "error", SEED_001_ONEBUDD_ERROR.replace('"sess_abc123"', "5")),
            "field 'event.session_id' must be a string, got number",
        ),
        (
            sdk_item("gecx", "ChatSdkError", GECX_ERROR.replace('"high"', '"urgent"')),
            "field 'event.severity' must be one of low, medium, high, critical, got \"urgent\"",
        ),
        (
            sdk_item(
                "gecx", "ChatSdkError", GECX_ERROR.replace('"retryable": true', '"retryable": 1')
            ),
            "field 'event.retryable' must be a boolean, got number",
        ),
        (
            sdk_item("gecx", "ChatSdkError", '{"message": "m"}'),
            "missing required field 'event.code'",
        ),
    ],
)
def test_it_refuses_bad_sdk_events_with_a_reason(data, reason):
    assert reason_of(data).startswith(reason)


def test_it_refuses_an_item_over_64_kib():
    data = session_error(stack="x" * MAX_ITEM_BYTES)
    assert reason_of(data) == f"item is {len(data)} bytes, over the limit of 65536 (64 KiB)"
    # Measured in UTF-8 bytes, not characters.
    text = session_error(stack="é" * (MAX_ITEM_BYTES // 2)).decode()
    assert len(text) < MAX_ITEM_BYTES
    assert reason_of(text).startswith("item is ")


def test_it_accepts_an_item_of_exactly_64_kib():
    data = session_error(stack="")
    data = session_error(stack="x" * (MAX_ITEM_BYTES - len(data)))
    assert len(data) == MAX_ITEM_BYTES
    assert normalise_item(data).stack.endswith(" chars]")


def test_it_refuses_a_str_that_is_not_utf8():
    assert reason_of('{"type": "\ud800"}').startswith("item is not valid UTF-8: ")


def test_it_raises_bad_item_for_a_non_dict_object():
    with pytest.raises(BadItem, match="got array"):
        normalise([1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_it_derives_the_same_id_for_the_same_content():
    first = normalise_item(session_error())
    again = normalise_item(session_error())
    assert first.event_id == again.event_id
    assert first.event_id == derive_event_id(orjson.loads(session_error()))


def test_it_ignores_key_order_and_whitespace_when_deriving_the_id():
    compact = (
        b'{"type":"session_warning","project_id":"%s","session_id":"s",'
        b'"code":31001,"metrics":{"rtt_ms":1,"mos":4}}'
    )
    spaced = (
        b'{ "metrics" : { "mos" : 4 , "rtt_ms" : 1 } ,\n "code": 31001, "session_id": "s",\n'
        b'  "project_id": "%s", "type": "session_warning" }'
    )
    ids = {normalise_item(text % PROJECT.encode()).event_id for text in (compact, spaced)}
    assert len(ids) == 1


def test_it_derives_different_ids_for_different_content():
    assert (
        normalise_item(session_error()).event_id
        != normalise_item(session_error(message="x")).event_id
    )


def test_it_lets_an_explicit_event_id_win():
    event = normalise_item(session_error(event_id="runner-7:42"))
    assert event.event_id == "runner-7:42"
    assert derive_event_id(orjson.loads(session_error(event_id="runner-7:42"))) == "runner-7:42"


# ---------------------------------------------------------------------------------------------
# Truncation


def test_it_truncates_long_strings_with_a_marker_to_their_limit():
    event = normalise_item(
        session_error(
            code="C" * 128,
            message="m" * 5000,
            build_id="b" * 201,
            stack="x" * 40000,
            customer_context={"note": "n" * 9000},
        )
    )
    assert event.code == "C" * 128 and event.name == event.code
    assert len(event.message) == 4000
    assert event.message == "m" * 3976 + "… [truncated 1024 chars]"
    assert len(event.build_id) == 200
    assert event.build_id == "b" * 178 + "… [truncated 23 chars]"
    assert len(event.stack) == 32000
    assert event.stack == "x" * 31976 + "… [truncated 8024 chars]"
    assert event.customer_context == {"note": "n" * 9000}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("session_id", "s" * 201, "'session_id' must be at most 200 characters, got 201"),
        ("session_id", "   ", "'session_id' must not be empty or only spaces"),
        ("session_id", "call\x00one", "'session_id' must not contain control characters"),
        ("event_id", " ", "'event_id' must not be empty or only spaces"),
        ("event_id", "e\x001", "'event_id' must not contain control characters"),
        ("event_id", "e" * 201, "'event_id' must be at most 200 characters"),
    ],
)
def test_ids_are_kept_exactly_or_refused_with_their_reason(field, value, reason):
    # Never cut or cleaned: two sessions sharing a 200-character prefix would merge, and an id
    # of spaces would make unrelated items one event (issue 14).
    with pytest.raises(BadItem) as refused:
        normalise_item(session_error(**{field: value}))
    assert reason in refused.value.reason


def test_it_leaves_strings_at_their_limit_alone():
    event = normalise_item(session_error(message="m" * 4000, code="C" * 128))
    assert (event.message, event.code) == ("m" * 4000, "C" * 128)


def test_it_keeps_strings_inside_details_as_they_came():
    long_hint = "h" * 6000
    gecx = GECX_ERROR.replace(
        '"Verify endpoint reachability', f'"{long_hint}Verify endpoint reachability'
    )
    event = normalise_item(sdk_item("gecx", "ChatSdkError", gecx))
    assert event.details["developerHint"].startswith(long_hint)


def test_it_round_trips_the_raw_object():
    data = sdk_item("telnyx", "telnyx.warning", TELNYX_WARNING)
    assert normalise_item(data).raw == orjson.loads(data)


def test_an_integer_past_64_bits_on_the_queue_is_refused_not_rounded():
    head = b'{"type": "agent_error", "project_id": "%s", "session_id": "s", "message": "m", '
    raw = head % PROJECT.encode() + b'"customer_context": {"ids": [1, 123456789012345678901234]}}'
    with pytest.raises(BadItem, match=r"'customer_context.ids\[1\]' is an integer past 64 bits"):
        normalise_item(raw)
    # A long run of digits inside a string is text, and fine.
    fine = raw.replace(b"[1, 123456789012345678901234]", b'"123456789012345678901234"')
    assert normalise_item(fine).customer_context == {"ids": "123456789012345678901234"}
