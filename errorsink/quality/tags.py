"""Per-session quality tags in the spirit of Twilio Voice Insights, derived from warning and
error codes of the catalog; the rollups add them to ``Session.quality_tags``.

Mapping (Telnyx WebRTC codes of docs/formats.md and SDK 2.27, as stored: numeric strings):

==========================  ==================================================================
tag                         codes
==========================  ==================================================================
``high_latency``            31001 HIGH_RTT
``high_jitter``             31002 HIGH_JITTER
``high_packet_loss``        31003 HIGH_PACKET_LOSS
``low_mos``                 31004 LOW_MOS
``low_audio``               31005 LOW_LOCAL_AUDIO, 31006 LOW_INBOUND_AUDIO (media flows, but
                            silence or comfort noise: a muted microphone, one-way audio)
``no_audio``                32001 LOW_BYTES_RECEIVED, 32002 LOW_BYTES_SENT (audio stopped flowing)
``connectivity_lost``       33001 ICE_CONNECTIVITY_LOST (interrupted, may recover),
                            36004 MEDIA_RECOVERY_REQUIRED (media path unhealthy, ICE restart)
``ice_failure``             33002 ICE_GATHERING_TIMEOUT, 33003 ICE_GATHERING_EMPTY,
                            33004 PEER_CONNECTION_FAILED, 47001 ICE_RESTART_FAILED;
                            VoiceThere WEBRTC_CONNECTION_FAILED
``host_candidates_only``    33005 ONLY_HOST_ICE_CANDIDATES (works on a LAN, rarely beyond it)
``session_lost``            35001 and 48501 SESSION_NOT_REATTACHED (call lost after a reconnect;
                            a warning before SDK 2.27.2, an error since)
``microphone_unavailable``  42001 permission denied, 42002 no device, 42003 getUserMedia failed
``signaling_failure``       45001-45004 WebSocket and gateway failures, 36003 signaling recovery
                            required, 36005 socket closed with auto-reconnect off; VoiceThere
                            WEBRTC_CONNECTION_CLOSED, WEBRTC_CONNECT_TIMEOUT
``network_offline``         48001 NETWORK_OFFLINE
==========================  ==================================================================

Codes that say nothing about the call's quality have no tag: SDP, hold, authentication, token
expiry, and the SDK 2.27 diagnostics of the application's own doing or of recording (44005 closed
during setup, 32003/32004 recording, 33006/33007 answer twice, 33008 path change, 33009 device
change skipped, 33010 several calls, 33011 shared media element, 35002 unknown reattach). A tag
is only ever added: once a session had high jitter, it had high jitter.
"""

from __future__ import annotations

TAG_CODES: dict[str, tuple[str, ...]] = {
    "high_latency": ("31001",),
    "high_jitter": ("31002",),
    "high_packet_loss": ("31003",),
    "low_mos": ("31004",),
    "low_audio": ("31005", "31006"),
    "no_audio": ("32001", "32002"),
    "connectivity_lost": ("33001", "36004"),
    "ice_failure": ("33002", "33003", "33004", "47001", "WEBRTC_CONNECTION_FAILED"),
    "host_candidates_only": ("33005",),
    "session_lost": ("35001", "48501"),
    "microphone_unavailable": ("42001", "42002", "42003"),
    "signaling_failure": (
        "45001", "45002", "45003", "45004", "36003", "36005", "WEBRTC_CONNECTION_CLOSED",
        "WEBRTC_CONNECT_TIMEOUT",
    ),
    "network_offline": ("48001",),
}  # fmt: skip

TAG_BY_CODE: dict[str, str] = {code: tag for tag, codes in TAG_CODES.items() for code in codes}


def quality_tags_for(codes: list[str] | set[str]) -> list[str]:
    """The sorted tags a session with these warning and error codes carries."""
    return sorted({TAG_BY_CODE[code] for code in codes if code in TAG_BY_CODE})
