"""What the demo day holds: its builds (one with a regression), how calls end, the network's
trouble, and the messages, stacks and customers its events carry."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOURS = 24
DEFAULT_SESSIONS = 300
DEFAULT_SEED = 1
MAX_HOURS = 720
MAX_SESSIONS = 100_000
PUSH_CHUNK = 1_000
DEMO_PROJECT_NAME = "Demo project"


@dataclass(frozen=True)
class Build:
    build_id: str
    deployed_after: float  # the share of the window's sessions that ran on earlier builds
    regression: bool = False


BUILDS = (
    Build("agent@1.41.0", 0.0),
    Build("agent@1.41.1", 0.30),
    Build("agent@1.42.0", 0.55, regression=True),
    Build("agent@1.42.1", 0.80),
)
REGRESSION = next(build.build_id for build in BUILDS if build.regression)

# How sessions end: (weight on a sound build, weight on the regression).
OUTCOMES = {
    "completed": (64, 36),
    "busy": (7, 7),
    "no_answer": (6, 6),
    "rejected": (4, 4),
    "misdialled": (2, 2),
    "idle": (5, 5),
    "crashed": (3, 22),
    "never_connected": (3, 8),
    "dropped": (2, 6),
    "provisioning_failed": (3, 2),
    "no_microphone": (2, 2),
}
# Calls that connected long enough for the network to be measured.
CONNECTED = ("completed", "idle", "crashed", "dropped")
# What the network does to a connected call, per 100 calls: (sound build, regression).
NETWORK = {
    "fine": (88, 51),
    "trouble": (7, 42),  # high latency, jitter or loss, and a low MOS
    "audio_stall": (3, 5),  # audio stops flowing one way
    "host_only": (2, 2),  # only local ICE candidates
}

# Seed 004's warning messages, which runner pods repeat in their session_warning items.
WARNING_MESSAGES = {
    "HIGH_RTT": "High network latency detected",
    "HIGH_JITTER": "High jitter detected",
    "HIGH_PACKET_LOSS": "High packet loss detected",
    "LOW_MOS": "Low call quality score",
}
SDK_WARNINGS = {
    "LOW_BYTES_RECEIVED": (32001, "No audio data received"),
    "LOW_BYTES_SENT": (32002, "No audio data being sent"),
    "ICE_CONNECTIVITY_LOST": (33001, "Connection interrupted"),
    "ICE_GATHERING_TIMEOUT": (33002, "ICE gathering timed out"),
    "ICE_GATHERING_EMPTY": (33003, "No ICE candidates gathered"),
    "PEER_CONNECTION_FAILED": (33004, "Connection failed"),
    "ONLY_HOST_ICE_CANDIDATES": (33005, "Only local network candidates available"),
    "TOKEN_EXPIRING_SOON": (34001, "Authentication token expiring soon"),
}
SDK_ERRORS = {
    "MEDIA_MICROPHONE_PERMISSION_DENIED": (42001, "Microphone access denied"),
    "MEDIA_DEVICE_NOT_FOUND": (42002, "No microphone found"),
    "MEDIA_GET_USER_MEDIA_FAILED": (42003, "Failed to access microphone"),
    "BYE_SEND_FAILED": (44003, "Failed to hang up cleanly"),
    "WEBSOCKET_ERROR": (45002, "Connection to server lost"),
    "NETWORK_OFFLINE": (48001, "Device is offline"),
    "SESSION_NOT_REATTACHED": (48501, "Active call lost after reconnect"),
}
REGRESSION_STACK = (
    "TypeError: Cannot read properties of undefined (reading 'slots')\n"
    "    at resolveBooking (/bundle/booking.js:57:19)\n"
    "    at onUserSpeechFinal (/bundle/agent.js:171:22)\n"
    "    at Runner.dispatch (/runner/dispatch.js:88:12)"
)
HANDLER_STACKS = (
    "TypeError: Cannot read properties of null (reading 'transcript')\n"
    "    at onUserSpeechFinal (/bundle/agent.js:142:27)\n"
    "    at Runner.dispatch (/runner/dispatch.js:88:12)",
    "Error: LLM request failed: 429 Too Many Requests\n"
    "    at complete (/bundle/llm.js:61:11)\n"
    "    at async onUserSpeechFinal (/bundle/agent.js:150:20)",
)
CHILD_STACKS = (
    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    "Error: Cannot find module './prompts/en-GB.json'\n"
    "    at loadBundle (/runner/bundle.js:44:9)\n"
    "    at ChildProcess.start (/runner/child.js:23:5)",
)
TIERS = ("free", "pro", "pro", "enterprise")
# Voice turns (docs/turns.md): at most this many a call, and the regression's LLM this much
# slower to its first token; the services each stage ran on.
TURNS_MAX = 6
TURNS_LLM_SLOWER = 1.8
TURN_MODELS = {"stt": ("deepgram", "nova-3"), "llm": ("openai", "gpt-4.1-mini"),
               "tts": ("cartesia", "sonic-2")}  # fmt: skip
LOCALES = ("en-US", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES")
