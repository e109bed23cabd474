"""The code catalog holds every code of the seeds, once, with the documented mapping rules."""

import re
from collections import Counter
from pathlib import Path

import pytest

from errorsink import catalog
from errorsink.catalog import all_codes, lookup, lookup_event, telnyx_code_for_name

pytestmark = pytest.mark.pure

# The SDK documents the catalog was written from sit beside a development checkout, in
# ../shared/seeds; the tests that read them skip where they are absent.
SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

VOICETHERE = [
    "AGENT_HANDLER_FAILED",
    "AGENT_CHILD_CRASHED",
    "RUNNER_INTERNAL",
    "SESSION_END_FAILED",
    "IDLE_TIMEOUT_CALLBACK_FAILED",
    "IDLE_TIMEOUT_CALLBACK_TIMED_OUT",
    "SESSION_IDLE_TIMEOUT",
    "PROVISIONING_FAILED",
    "PROVISIONING_TIMEOUT",
    "WEBRTC_CONNECTION_FAILED",
    "WEBRTC_CONNECTION_CLOSED",
    "WEBRTC_CONNECT_TIMEOUT",
]
ONEBUDD_FATAL = {
    "auth_failed": True,
    "session_expired": True,
    "session_not_found": True,
    "rate_limited": False,
    "stt_failed": False,
    "llm_failed": False,
    "tts_failed": False,
    "invalid_event": False,
    "invalid_audio": False,
    "server_error": True,
}
TELNYX_ERRORS = {
    "40001": "SDP_CREATE_OFFER_FAILED",
    "40002": "SDP_CREATE_ANSWER_FAILED",
    "40003": "SDP_SET_LOCAL_DESCRIPTION_FAILED",
    "40004": "SDP_SET_REMOTE_DESCRIPTION_FAILED",
    "40005": "SDP_SEND_FAILED",
    "42001": "MEDIA_MICROPHONE_PERMISSION_DENIED",
    "42002": "MEDIA_DEVICE_NOT_FOUND",
    "42003": "MEDIA_GET_USER_MEDIA_FAILED",
    "44001": "HOLD_FAILED",
    "44002": "INVALID_CALL_PARAMETERS",
    "44003": "BYE_SEND_FAILED",
    "44004": "SUBSCRIBE_FAILED",
    "45001": "WEBSOCKET_CONNECTION_FAILED",
    "45002": "WEBSOCKET_ERROR",
    "45003": "RECONNECTION_EXHAUSTED",
    "45004": "GATEWAY_FAILED",
    "46001": "LOGIN_FAILED",
    "46002": "INVALID_CREDENTIALS",
    "46003": "AUTHENTICATION_REQUIRED",
    "48001": "NETWORK_OFFLINE",
    "49001": "UNEXPECTED_ERROR",
}
# What Telnyx WebRTC SDK 2.27 added to the codes of the Telnyx document the catalog started from
# (its TELNYX_ERROR_CODES / TELNYX_WARNING_CODES).
TELNYX_227_ERRORS = {
    "44005": "PEER_CLOSED_DURING_INIT",
    "47001": "ICE_RESTART_FAILED",
    "48501": "SESSION_NOT_REATTACHED",
}
TELNYX_227_WARNINGS = {
    "31005": "LOW_LOCAL_AUDIO",
    "31006": "LOW_INBOUND_AUDIO",
    "32003": "RECORDING_UNAVAILABLE",
    "32004": "RECORDING_BUFFER_OVERFLOW",
    "33006": "ANSWER_WHILE_PEER_ACTIVE",
    "33007": "DUPLICATE_INBOUND_ANSWER",
    "33008": "ICE_CANDIDATE_PAIR_CHANGED",
    "33009": "AUDIO_INPUT_DEVICE_CHANGE_SKIPPED",
    "33010": "MULTIPLE_ACTIVE_CALLS_DETECTED",
    "33011": "SHARED_REMOTE_ELEMENT_OVERWRITE",
    "35002": "UNKNOWN_REATTACHED_SESSION",
    "36003": "SIGNALING_RECOVERY_REQUIRED",
    "36004": "MEDIA_RECOVERY_REQUIRED",
    "36005": "RECONNECTION_FAILED_WITH_NO_AUTO_RECONNECT",
}
# Errors SDK 2.27's registry (fatal: false) and its guide ("Non-fatal") agree are not fatal.
TELNYX_RECOVERABLE_ERRORS = {"44001", "44003", "47001"}
TELNYX_WARNINGS = {
    "31001": "HIGH_RTT",
    "31002": "HIGH_JITTER",
    "31003": "HIGH_PACKET_LOSS",
    "31004": "LOW_MOS",
    "32001": "LOW_BYTES_RECEIVED",
    "32002": "LOW_BYTES_SENT",
    "33001": "ICE_CONNECTIVITY_LOST",
    "33002": "ICE_GATHERING_TIMEOUT",
    "33003": "ICE_GATHERING_EMPTY",
    "33004": "PEER_CONNECTION_FAILED",
    "33005": "ONLY_HOST_ICE_CANDIDATES",
    "34001": "TOKEN_EXPIRING_SOON",
    "35001": "SESSION_NOT_REATTACHED",
}
TELNYX_TERMINATIONS = [
    "NORMAL_CLEARING",
    "USER_BUSY",
    "CALL_REJECTED",
    "NO_ANSWER",
    "UNALLOCATED_NUMBER",
    "PURGE",
    "ws:1000",
    "ws:1001",
    "ws:1002",
    "ws:1003",
    "ws:1005",
    "ws:1006",
    "ws:1011",
]


def seed_text(prefix: str) -> str:
    matches = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not matches:
        pytest.skip(f"seed {prefix} not found under {SEEDS}")
    return matches[0].read_text(encoding="utf-8")


def test_it_counts_codes_per_sdk_and_kind():
    counts = Counter((info.sdk, info.kind) for info in all_codes())
    assert counts == {
        ("voicethere", "error"): 11,
        ("voicethere", "info"): 1,
        ("onebudd", "error"): 10,
        ("gecx", "error"): 91,
        ("telnyx", "error"): 24,
        ("telnyx", "warning"): 27,
        ("telnyx", "termination"): 13,
    }


def test_it_has_the_twelve_voicethere_codes_with_their_sources():
    infos = {info.code: info for info in all_codes() if info.sdk == "voicethere"}
    assert list(infos) == VOICETHERE
    assert {code: info.source for code, info in infos.items()} == {
        "AGENT_HANDLER_FAILED": "agent",
        "AGENT_CHILD_CRASHED": "agent",
        "RUNNER_INTERNAL": "runner",
        "SESSION_END_FAILED": "runner",
        "IDLE_TIMEOUT_CALLBACK_FAILED": "runner",
        "IDLE_TIMEOUT_CALLBACK_TIMED_OUT": "runner",
        "SESSION_IDLE_TIMEOUT": "runner",
        "PROVISIONING_FAILED": "provisioning",
        "PROVISIONING_TIMEOUT": "provisioning",
        "WEBRTC_CONNECTION_FAILED": "client",
        "WEBRTC_CONNECTION_CLOSED": "client",
        "WEBRTC_CONNECT_TIMEOUT": "client",
    }


def test_it_applies_the_voicethere_severity_rules():
    idle = lookup("SESSION_IDLE_TIMEOUT")
    assert (idle.kind, idle.severity) == ("info", "low")
    for code in ("AGENT_HANDLER_FAILED", "AGENT_CHILD_CRASHED", "RUNNER_INTERNAL"):
        assert (lookup(code).severity, lookup(code).recoverable) == ("high", False)
    assert (lookup("SESSION_END_FAILED").severity, lookup("SESSION_END_FAILED").recoverable) == (
        "high",
        False,
    )


def test_it_maps_onebudd_fatal_to_severity_and_recoverable():
    infos = {info.code: info for info in all_codes() if info.sdk == "onebudd"}
    assert set(infos) == set(ONEBUDD_FATAL)
    for code, fatal in ONEBUDD_FATAL.items():
        assert infos[code].severity == ("high" if fatal else "medium")
        assert infos[code].recoverable is not fatal
        assert infos[code].name == code


def test_it_has_every_gecx_row_of_the_seed_with_its_severity_and_retryable():
    rows = re.findall(
        r"^([A-Z0-9_]+) \| (low|medium|high|critical) \| (Yes|No) \|", seed_text("003"), re.M
    )
    assert len(rows) == 92  # VOICE_TOKEN_ENDPOINT_MISSING is listed twice
    for code, severity, retryable in rows:
        info = lookup(code, sdk="gecx", fallback=False)
        assert info is not None, code
        assert (info.severity, info.retryable) == (severity, retryable == "Yes"), code
    assert sum(info.sdk == "gecx" for info in all_codes()) == len({row[0] for row in rows})


def test_it_has_a_sample_of_gecx_codes_including_untitled_tables():
    for code, severity, retryable in [
        ("AUTH_REQUIRED", "high", False),
        ("TOOL_NOT_REGISTERED", "medium", False),  # table without a heading
        ("SERVER_TOOL_HTTP_FAILED", "medium", True),  # table without a heading
        ("AGENTIS_SESSION_INIT_FAILED", "high", True),  # table without a heading
        ("COMMERCE_PII_LEAK", "critical", False),
        ("MEMORY_ENTRY_NOT_FOUND", "low", False),
        ("INTERNAL_ERROR", "critical", False),
    ]:
        info = lookup(code, sdk="gecx")
        assert (info.severity, info.retryable, info.recoverable) == (severity, retryable, retryable)


def test_it_keeps_one_voice_token_endpoint_missing():
    matches = [info for info in all_codes() if info.code == "VOICE_TOKEN_ENDPOINT_MISSING"]
    assert len(matches) == 1
    assert (matches[0].severity, matches[0].retryable) == ("high", False)


def test_it_has_every_telnyx_code_of_the_seed():
    numbers = set(re.findall(r"^([34]\d{4})[A-Z]", seed_text("004"), re.M))
    catalogued = {info.code for info in all_codes() if info.sdk == "telnyx"}
    assert numbers == set(TELNYX_ERRORS) | set(TELNYX_WARNINGS)
    assert numbers <= catalogued


def test_it_gives_telnyx_errors_and_warnings_their_names_and_rules():
    for code, name in (TELNYX_ERRORS | TELNYX_227_ERRORS).items():
        info = lookup(code, sdk="telnyx")
        assert (info.name, info.kind, info.severity, info.recoverable) == (
            name,
            "error",
            "high",
            code in TELNYX_RECOVERABLE_ERRORS,
        ), code
    for code, name in (TELNYX_WARNINGS | TELNYX_227_WARNINGS).items():
        info = lookup(code, sdk="telnyx")
        assert (info.name, info.kind, info.severity, info.recoverable) == (
            name,
            "warning",
            "medium",
            True,
        )


def test_it_has_the_codes_telnyx_sdk_227_added_in_code_order():
    telnyx = [info for info in all_codes() if info.sdk == "telnyx" and info.code.isdigit()]
    catalogued = {info.code: info.name for info in telnyx}
    assert catalogued == TELNYX_ERRORS | TELNYX_227_ERRORS | TELNYX_WARNINGS | TELNYX_227_WARNINGS
    errors = [info.code for info in telnyx if info.kind == "error"]
    warnings = [info.code for info in telnyx if info.kind == "warning"]
    assert errors == sorted(errors) and warnings == sorted(warnings)
    # The SDK moved SESSION_NOT_REATTACHED from warning 35001 to error 48501; older SDKs still
    # send the warning, and the catalog says so.
    assert "48501" in lookup("35001", sdk="telnyx").description
    assert lookup("48501", sdk="telnyx").kind == "error"


# The message each emits (SDK_ERRORS / SDK_WARNINGS of SDK 2.27), which opens its description.
TELNYX_227_MESSAGES = {
    "44005": "Call was closed during setup",
    "47001": "ICE restart failed",
    "48501": "Active call lost after reconnect",
    "31005": "Low local microphone audio detected",
    "31006": "Low inbound audio detected",
    "32003": "Call recording is not available in this browser",
    "32004": "Call recording buffer overflow — oldest packets dropped",
    "33006": "Call answer ignored because a peer connection is already active",
    "33007": "Call answer ignored because another inbound call is already being answered",
    "33008": "ICE candidate pair changed mid-call",
    "33009": "Audio input device change skipped",
    "33010": "Multiple active calls detected in one SDK session",
    "33011": "Remote media element overwritten by another call",
    "35002": "Unknown reattach session after reconnect",
    "36003": "Signaling recovery required",
    "36004": "Media recovery required",
    "36005": "Reconnection failed — auto-reconnect disabled",
}


def test_it_describes_each_new_telnyx_code_by_its_sdk_message_then_its_trigger():
    assert set(TELNYX_227_MESSAGES) == set(TELNYX_227_ERRORS) | set(TELNYX_227_WARNINGS)
    for code, message in TELNYX_227_MESSAGES.items():
        info = lookup(code, sdk="telnyx")
        assert info.description.startswith(message + ": "), code
        assert len(info.description) > len(message) + 20, code  # a trigger follows


def test_it_has_telnyx_terminations_and_websocket_close_codes():
    for code in TELNYX_TERMINATIONS:
        assert lookup(code, sdk="telnyx").kind == "termination", code
    assert lookup("ws:1006").name == "WS_ABNORMAL_CLOSURE"
    assert lookup("1006") is None  # close codes are keyed ws:<n>, never bare numbers
    assert lookup("NORMAL_CLEARING").severity == "low"


def test_it_looks_up_by_sdk_then_falls_back_to_the_code():
    assert lookup("auth_failed", sdk="onebudd").sdk == "onebudd"
    assert lookup("AUTH_FAILED", sdk="gecx").sdk == "gecx"
    assert lookup("SESSION_EXPIRED").sdk == "gecx"
    assert lookup("session_expired").sdk == "onebudd"
    assert lookup("AGENT_CHILD_CRASHED", sdk="telnyx").sdk == "voicethere"
    assert lookup("AGENT_CHILD_CRASHED", sdk="telnyx", fallback=False) is None
    assert lookup("NO_SUCH_CODE") is None
    assert lookup("NO_SUCH_CODE", sdk="gecx") is None


def test_it_finds_telnyx_codes_by_name():
    assert telnyx_code_for_name("HIGH_JITTER") == "31002"
    assert telnyx_code_for_name("WEBSOCKET_ERROR") == "45002"
    # The one name of both kinds: the error unless a warning is asked for.
    assert telnyx_code_for_name("SESSION_NOT_REATTACHED") == "48501"
    assert telnyx_code_for_name("SESSION_NOT_REATTACHED", kind="error") == "48501"
    assert telnyx_code_for_name("SESSION_NOT_REATTACHED", kind="warning") == "35001"
    assert telnyx_code_for_name("HIGH_JITTER", kind="error") == "31002"  # only a warning
    assert telnyx_code_for_name("ICE_RESTART_FAILED", kind="warning") == "47001"
    assert telnyx_code_for_name("NORMAL_CLEARING") is None
    assert telnyx_code_for_name("WS_ABNORMAL_CLOSURE") is None
    assert telnyx_code_for_name("high_jitter") is None


def test_it_finds_a_stored_events_entry_by_its_sdk_then_by_a_telnyx_name():
    assert lookup_event("auth_failed", {"sdk": "onebudd"}).sdk == "onebudd"
    assert lookup_event("AUTH_FAILED", {"sdk": "gecx"}).sdk == "gecx"
    assert lookup_event("AGENT_CHILD_CRASHED", {}).sdk == "voicethere"
    assert lookup_event("HIGH_JITTER", {"sdk": "telnyx"}).code == "31002"
    assert lookup_event("HIGH_JITTER", {}).code == "31002"
    assert lookup_event("31002", None).name == "HIGH_JITTER"
    assert lookup_event("AGENT_CHILD_CRASHED", {"sdk": ["not", "a", "name"]}).sdk == "voicethere"
    assert lookup_event("NO_SUCH_CODE", {"sdk": "telnyx"}) is None
    name = "SESSION_NOT_REATTACHED"
    assert lookup_event(name, {"sdk": "telnyx"}, kind="warning").code == "35001"
    assert lookup_event(name, {"sdk": "telnyx"}, kind="error").code == "48501"


def test_it_lists_codes_in_a_stable_order_without_exposing_its_list():
    first = all_codes()
    first.clear()
    codes = all_codes()
    assert codes == all_codes()
    assert codes[0].code == "AGENT_HANDLER_FAILED"
    assert codes[-1].code == "ws:1011"
    assert len({(info.sdk, info.code) for info in codes}) == len(codes)


def test_it_gives_every_entry_a_one_line_description_and_fix():
    for info in all_codes():
        assert info.description and "\n" not in info.description, info.code
        assert info.fix and "\n" not in info.fix, info.code
        assert info.recoverable in (True, False)
        if info.sdk == "gecx":
            assert info.recoverable == info.retryable


def test_it_refuses_a_duplicate_entry_instead_of_overwriting_it():
    row = {
        "code": "X",
        "name": "X",
        "sdk": "gecx",
        "kind": "error",
        "severity": "low",
        "recoverable": True,
        "retryable": True,
        "source": "client",
        "description": "d",
        "fix": "f",
    }
    with pytest.raises(ValueError, match="duplicate"):
        catalog._index([row, dict(row)])
    with pytest.raises(ValueError, match="bad entry"):
        catalog._index([{**row, "severity": "severe"}])
