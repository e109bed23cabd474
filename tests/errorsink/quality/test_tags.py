"""Which codes give a session which Twilio-style quality tag."""

import pytest

from errorsink.catalog import lookup
from errorsink.quality.tags import TAG_BY_CODE, TAG_CODES, quality_tags_for

pytestmark = pytest.mark.pure


def test_it_maps_only_codes_the_catalog_knows_each_to_one_tag():
    codes = [code for tag_codes in TAG_CODES.values() for code in tag_codes]
    assert len(codes) == len(set(codes)) == len(TAG_BY_CODE)
    for code in codes:
        assert lookup(code) is not None, code
        assert lookup(code).kind in ("error", "warning"), code


@pytest.mark.parametrize(
    ("code", "tag"),
    [
        ("31005", "low_audio"),  # LOW_LOCAL_AUDIO
        ("31006", "low_audio"),  # LOW_INBOUND_AUDIO
        ("32001", "no_audio"),
        ("47001", "ice_failure"),  # ICE_RESTART_FAILED
        ("36004", "connectivity_lost"),  # MEDIA_RECOVERY_REQUIRED
        ("36003", "signaling_failure"),  # SIGNALING_RECOVERY_REQUIRED
        ("36005", "signaling_failure"),  # RECONNECTION_FAILED_WITH_NO_AUTO_RECONNECT
        ("35001", "session_lost"),  # SESSION_NOT_REATTACHED before SDK 2.27.2
        ("48501", "session_lost"),  # and since
    ],
)
def test_it_tags_the_sdk_227_codes_that_say_how_the_call_went(code, tag):
    assert quality_tags_for({code}) == [tag]


@pytest.mark.parametrize(
    "code",
    ["44005", "32003", "32004", "33006", "33007", "33008", "33009", "33010", "33011", "35002"],
)
def test_it_leaves_diagnostics_of_the_app_or_of_recording_untagged(code):
    assert quality_tags_for({code}) == []


def test_it_gives_each_tag_once_in_order():
    assert quality_tags_for(["31006", "31005", "47001", "33004", "34001"]) == [
        "ice_failure",
        "low_audio",
    ]
