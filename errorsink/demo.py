"""Demo data: a realistic day of voice sessions, pushed through the real ingest queue.

``demo_items`` builds the queue items that runner pods and the Telnyx WebRTC SDK in browsers
would have pushed for ``sessions`` sessions over the last ``hours``: pure, no database or Redis.
``demo_push`` reads the project's crash message and idle timeout, builds the items and LPUSHes
them onto the queue exactly as runner pods do; the ingest worker stores them like any others.
``manage.py demo`` and the "Load demo data" button (through a Celery task) both call it.

The day. Sessions start across the window, busier in the (UTC) afternoon, on four builds
deployed one after another (``BUILDS``). The third, ``REGRESSION``, shipped a regression: about
three times as many sessions with network-quality warnings, more ICE failures and dropped calls,
and a crash in its booking code; the fourth fixes it. Sessions end every way a call ends:
normally, busy, unanswered, rejected, misdialled, idle, the agent crashing (the runner plays the
crash message and hangs up, so the call itself clears normally), WebRTC never connecting or the
connection dropping (both purged), or never starting at all (provisioning, microphone).
Network-quality warnings carry the metrics the runner measured (rtt_ms, jitter_ms,
packet_loss_pct, mos); errors carry stacks and the customer context. Every format a voice
session produces is used: ``session_error``, ``session_warning``, ``session_end`` and the
Telnyx SDK's (2.27) ``telnyx.warning``, ``telnyx.error`` and hangup ``telnyx.notification``.

Deterministic and idempotent per seed. Session ``n`` of seed ``s`` draws what happens from one
random generator of its own and when from another, so it is the same session whatever the
window, the number of sessions or the time of the run, and its items carry the event ids
``demo-<s>-<n>-<k>``. The same seed, options and ``now`` give the same items; pushing the
same seed again stores nothing new (the worker keeps the first copy of each event id), and
another seed adds other sessions.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from errorsink.catalog import lookup
from errorsink.ingest.queue import enqueue, heartbeat_key, redis_client
from errorsink.projects.models import (
    DEFAULT_ERROR_MESSAGE,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    Membership,
    Project,
)
from errorsink.projects.services import project_add_member, project_create
from errorsink.projects.session_settings import session_settings_get

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
LOCALES = ("en-US", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES")


@dataclass(frozen=True)
class DemoSummary:
    project_id: str
    seed: int
    sessions: int
    hours: int
    items: int
    item_types: dict[str, int]
    builds: tuple[str, ...] = tuple(build.build_id for build in BUILDS)
    regression: str = REGRESSION
    already_stored: int = 0
    workers_alive: int = 0


# ---------------------------------------------------------------------------------------------
# The items (pure)


def demo_items(
    *,
    project_id: str,
    hours: int = DEFAULT_HOURS,
    sessions: int = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    crash_message: str = DEFAULT_ERROR_MESSAGE,
    idle_timeout_seconds: int = DEFAULT_IDLE_TIMEOUT_SECONDS,
) -> list[dict]:
    """The queue items of ``sessions`` sessions over the ``hours`` before ``now`` (from the start
    of the quality window of that length), oldest first, so the queue delivers them in the
    order they happened."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    window = now - _window_start(now, hours)
    periods = _build_periods(now, window)
    offsets = random.Random(f"errorsink-demo:{seed}")
    start = [offsets.random() for _ in _R3]
    items = []
    for n in range(sessions):
        call = _Call(
            rng=random.Random(f"errorsink-demo:{seed}:{n}"),
            clock=random.Random(f"errorsink-demo:{seed}:{n}:clock"),
            spread=[(first + n * step) % 1 for first, step in zip(start, _R3, strict=True)],
            project_id=str(project_id),
            event_prefix=f"demo-{seed}-{n}",
            crash_message=crash_message,
            idle_timeout_seconds=idle_timeout_seconds,
        )
        call.play(now=now, window=window, periods=periods)
        items.extend(call.items)
    items.sort(key=lambda item: (item["occurred_at"], item["event_id"]))
    return items


# The R3 low-discrepancy sequence (Roberts, 2018): session n's build, outcome and network luck
# are its n-th point rather than independent draws, so every build gets its share of each
# outcome and of network trouble almost exactly: what sets the builds apart is the regression,
# not chance.
_R3 = (0.8191725133961645, 0.6710436067037893, 0.5497004779019703)


def _window_start(now: datetime, hours: int) -> datetime:
    """Where the quality window of that length starts: windows end with the current bucket (a
    minute for one hour, else an hour), so the day fills one window and spills into no earlier
    one, whose comparison it would otherwise skew."""
    bucket = timedelta(minutes=1) if hours == 1 else timedelta(hours=1)
    floor = now - (now - datetime(2000, 1, 1, tzinfo=UTC)) % bucket
    return floor + bucket - timedelta(hours=hours)


def _build_periods(now: datetime, window: timedelta) -> dict[str, tuple[float, float]]:
    """When each build ran, as fractions of the window (0 its start, 1 now), placed so that
    each carries its share of the sessions wherever the busy hours fall."""
    steps = 1_000
    weights = [_busy_hour_weight(now - window * (1 - (i + 0.5) / steps)) for i in range(steps)]
    total, running, shares = sum(weights), 0.0, []
    for weight in weights:
        running += weight
        shares.append(running / total)
    starts = [bisect_left(shares, build.deployed_after) / steps for build in BUILDS]
    ends = [*starts[1:], 1.0]
    return {
        build.build_id: (start, end) for build, start, end in zip(BUILDS, starts, ends, strict=True)
    }


def _pick(weights: dict[str, tuple[int, int]], point: float, *, column: int) -> str:
    """The key whose share of the column's total weight holds ``point`` (0 to 1)."""
    total = sum(row[column] for row in weights.values())
    running = 0
    for key, row in weights.items():
        running += row[column]
        if point * total < running:
            return key
    return key


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _busy_hour_weight(moment: datetime) -> float:
    """Calls follow the working day: quiet at night, busiest mid-afternoon (UTC)."""
    hour = moment.hour + moment.minute / 60
    return 0.25 + 0.75 * (0.5 + 0.5 * math.cos((hour - 15) / 24 * 2 * math.pi))


@dataclass
class _Call:
    """One session: picks its start, build and outcome, then records what each producer would
    have pushed about it."""

    rng: random.Random
    clock: random.Random
    spread: list[float]  # in [0, 1): which build, which outcome, what the network does
    project_id: str
    event_prefix: str
    crash_message: str
    idle_timeout_seconds: int
    items: list[dict] = field(default_factory=list)

    def play(self, *, now: datetime, window: timedelta, periods: dict) -> None:
        # What happens comes from ``rng`` alone, when it happened from ``clock``: a session is
        # the same session (and its event ids the same) whatever the window and the hour.
        rng = self.rng
        self.session_id = f"demo-{rng.getrandbits(48):012x}"
        self.telnyx_session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.call_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.context = {
            "userId": f"u_{rng.randrange(10_000, 100_000)}",
            "tier": rng.choice(TIERS),
            "locale": rng.choice(LOCALES),
            "channel": "web",
        }
        which_build, which_outcome, _ = self.spread
        self.build = [build for build in BUILDS if build.deployed_after <= which_build][-1]
        bad = self.build.regression
        outcome = _pick(OUTCOMES, which_outcome, column=bad)
        self.duration = self._duration(outcome)
        fraction = self._start_fraction(now, window, *periods[self.build.build_id])
        # Every event of the session lies in the past, the last at least a second ago.
        latest_start = now - timedelta(seconds=self.duration + 1)
        self.start = min(now - window * (1 - fraction), latest_start)
        self.measured_until = self.duration - 5  # network warnings come before the call's end
        getattr(self, f"_{outcome}")()
        if outcome in CONNECTED:
            self._network(bad)

    def _start_fraction(self, now: datetime, window: timedelta, low: float, high: float) -> float:
        for _ in range(20):  # rejection sampling against the hour of the day
            fraction = low + (high - low) * self.clock.random()
            if self.clock.random() < _busy_hour_weight(now - window * (1 - fraction)):
                return fraction
        return fraction

    def _duration(self, outcome: str) -> float:
        rng = self.rng
        talk = min(max(rng.lognormvariate(math.log(140), 0.8), 12), 1_500)
        return {
            "busy": rng.uniform(2, 8),
            "no_answer": rng.uniform(25, 45),
            "rejected": rng.uniform(3, 15),
            "misdialled": rng.uniform(1, 3),
            "idle": talk / 2 + self.idle_timeout_seconds,
            "crashed": rng.uniform(10, 200),
            "never_connected": rng.uniform(12, 20),
            "dropped": rng.uniform(20, 300),
            "provisioning_failed": rng.uniform(1, 30),
            "no_microphone": rng.uniform(1, 4),
        }.get(outcome, talk)

    # --- what producers push ------------------------------------------------------------------

    def _push(self, at: float, item: dict) -> None:
        moment = self.start + timedelta(seconds=max(0.0, min(at, self.duration)))
        self.items.append(
            {
                **item,
                "project_id": self.project_id,
                "event_id": f"{self.event_prefix}-{len(self.items)}",
                "build_id": self.build.build_id,
                "occurred_at": _iso(moment),
            }
        )

    def _error(self, at: float, code: str, message: str, stack: str | None = None, **extra):
        item = {
            "type": "session_error",
            "code": code,
            "message": message,
            "session_id": self.session_id,
            "customer_context": self.context,
            **extra,
        }
        if stack is not None:
            item["stack"] = stack
        self._push(at, item)

    def _warning(self, at: float, name: str, metrics: dict) -> None:
        self._push(
            at,
            {
                "type": "session_warning",
                "session_id": self.session_id,
                "code": name,
                "message": WARNING_MESSAGES[name],
                "metrics": metrics,
            },
        )

    def _sdk(self, at: float, name: str, event: dict) -> None:
        event = {**event, "sessionId": self.telnyx_session, "callId": self.call_id}
        self._push(
            at,
            {
                "type": "sdk_event",
                "sdk": "telnyx",
                "name": name,
                "session_id": self.session_id,
                "event": event,
            },
        )

    def _sdk_warning(self, at: float, name: str) -> None:
        code, message = SDK_WARNINGS[name]
        self._sdk(
            at, "telnyx.warning", {"warning": {"code": code, "name": name, "message": message}}
        )

    def _sdk_error(self, at: float, name: str) -> None:
        code, message = SDK_ERRORS[name]
        # SDK 2.27 says whether the error is fatal; the catalog knows which ones are.
        fatal = not lookup(str(code), sdk="telnyx").recoverable
        error = {"code": code, "name": name, "message": message, "fatal": fatal}
        self._sdk(at, "telnyx.error", {"error": error})

    def _end(
        self,
        cause: str,
        cause_code: int | None,
        sip_code: int | None = None,
        sip_reason: str | None = None,
        *,
        close_code: int | None = None,
        sdk_may_report: bool = True,
    ) -> None:
        """The runner reports most ends; for about a third the browser's SDK reports its
        hangup instead, which knows no duration or close code."""
        if sdk_may_report and self.rng.random() < 0.3:
            call = {"id": self.call_id, "state": "hangup", "cause": cause}
            optional = {"causeCode": cause_code, "sipCode": sip_code, "sipReason": sip_reason}
            call.update({key: value for key, value in optional.items() if value is not None})
            self._sdk(self.duration, "telnyx.notification", {"type": "callUpdate", "call": call})
            return
        item = {
            "type": "session_end",
            "session_id": self.session_id,
            "cause": cause,
            "duration_ms": round(self.duration * 1000),
        }
        optional = {
            "cause_code": cause_code,
            "sip_code": sip_code,
            "sip_reason": sip_reason,
            "close_code": close_code,
        }
        item.update({key: value for key, value in optional.items() if value is not None})
        self._push(self.duration, item)

    # --- outcomes ---------------------------------------------------------------------------

    def _completed(self) -> None:
        rng = self.rng
        if self.duration > 600 and rng.random() < 0.5:
            self._sdk_warning(rng.uniform(480, 600), "TOKEN_EXPIRING_SOON")
        if rng.random() < 0.015:
            self._error(
                self.duration,
                "SESSION_END_FAILED",
                "Session marked failed on teardown: recording upload returned 503",
            )
        if rng.random() < 0.01:
            self._sdk_error(self.duration, "BYE_SEND_FAILED")
        self._end("NORMAL_CLEARING", 16, 200, "OK")

    def _busy(self) -> None:
        self._end("USER_BUSY", 17, 486, "Busy Here")

    def _no_answer(self) -> None:
        if self.rng.random() < 0.3:
            self._end("NO_ANSWER", 19, 408, "Request Timeout")
        else:
            self._end("NO_ANSWER", 19, 480, "Temporarily Unavailable")

    def _rejected(self) -> None:
        if self.rng.random() < 0.25:
            self._end("CALL_REJECTED", 21, 403, "Forbidden")
        else:
            self._end("CALL_REJECTED", 21, 603, "Decline")

    def _misdialled(self) -> None:
        self._end("UNALLOCATED_NUMBER", 1, 404, "Not Found")

    def _idle(self) -> None:
        rng, idle = self.rng, self.idle_timeout_seconds
        self._push(
            self.duration - 2,
            {
                "type": "session_error",
                "code": "SESSION_IDLE_TIMEOUT",
                "session_id": self.session_id,
                "message": f"Peer idle for {idle} s; ending the session",
            },
        )
        if rng.random() < 0.2:
            self._error(
                self.duration - 1,
                "IDLE_TIMEOUT_CALLBACK_FAILED",
                "onIdleTimeout threw: goodbyePrompt is not defined",
                "ReferenceError: goodbyePrompt is not defined\n"
                "    at onIdleTimeout (/bundle/agent.js:301:9)",
            )
        elif rng.random() < 0.1:
            self._error(
                self.duration - 1,
                "IDLE_TIMEOUT_CALLBACK_TIMED_OUT",
                "onIdleTimeout exceeded the 30 s grace",
            )
        self._end("NORMAL_CLEARING", 16, 200, "OK")

    def _crashed(self) -> None:
        """The agent throws; the runner plays the crash message and hangs up."""
        rng = self.rng
        at = self.duration - 4
        self.measured_until = at - 1
        if self.build.regression and rng.random() < 0.8:
            self._error(
                at, "AGENT_HANDLER_FAILED", self.crash_message, REGRESSION_STACK, recoverable=False
            )
        elif rng.random() < 0.7:
            self._error(
                at,
                "AGENT_HANDLER_FAILED",
                self.crash_message,
                rng.choice(HANDLER_STACKS),
                recoverable=False,
            )
        else:
            self._error(
                at,
                "AGENT_CHILD_CRASHED",
                self.crash_message,
                rng.choice(CHILD_STACKS),
                recoverable=False,
            )
        if rng.random() < 0.2:
            self._error(
                at + 1,
                "RUNNER_INTERNAL",
                "Crash TTS could not play: TTS request timed out after 5000 ms",
            )
        self._end("NORMAL_CLEARING", 16, 200, "OK")

    def _never_connected(self) -> None:
        rng = self.rng
        if rng.random() < 0.4:
            self._sdk_warning(1, "ONLY_HOST_ICE_CANDIDATES")
        gathering = "ICE_GATHERING_TIMEOUT" if rng.random() < 0.7 else "ICE_GATHERING_EMPTY"
        self._sdk_warning(rng.uniform(3, 6), gathering)
        self._sdk_warning(self.duration - 3, "PEER_CONNECTION_FAILED")
        if rng.random() < 0.6:
            self._error(
                self.duration - 1, "WEBRTC_CONNECTION_FAILED", "Peer connection state became failed"
            )
        else:
            self._error(
                self.duration - 1,
                "WEBRTC_CONNECT_TIMEOUT",
                "waitForConnected timed out after 15000 ms",
            )
        self._end("PURGE", None, sdk_may_report=False)

    def _dropped(self) -> None:
        rng = self.rng
        lost = self.duration - rng.uniform(6, 12)
        self.measured_until = lost - 1
        self._sdk_warning(lost, "ICE_CONNECTIVITY_LOST")
        self._sdk_error(lost + 1, "NETWORK_OFFLINE" if rng.random() < 0.3 else "WEBSOCKET_ERROR")
        self._sdk_error(lost + rng.uniform(3, 5), "SESSION_NOT_REATTACHED")
        self._error(
            self.duration - 1,
            "WEBRTC_CONNECTION_CLOSED",
            "Unexpected close before graceful disconnect",
        )
        self._end("PURGE", None, close_code=1006, sdk_may_report=False)

    def _provisioning_failed(self) -> None:
        if self.rng.random() < 0.6:
            self._error(
                self.duration,
                "PROVISIONING_FAILED",
                "Session start job failed: HTTP 503 from session-service",
            )
        else:
            self._error(
                self.duration, "PROVISIONING_TIMEOUT", "Provisioning poll exceeded 30000 ms"
            )

    def _no_microphone(self) -> None:
        name = self.rng.choice(list(SDK_ERRORS)[:3])
        self._sdk_error(self.duration, name)

    # --- the network, measured while the call was up ----------------------------------------

    def _network(self, bad: bool) -> None:
        rng = self.rng
        network = _pick(NETWORK, self.spread[2], column=bad)
        if network == "audio_stall":
            name = "LOW_BYTES_SENT" if rng.random() < 0.6 else "LOW_BYTES_RECEIVED"
            self._sdk_warning(rng.uniform(2, max(2, self.measured_until)), name)
        elif network == "host_only":
            self._sdk_warning(1, "ONLY_HOST_ICE_CANDIDATES")
        if network != "trouble":
            return
        trouble = rng.choice(("latency", "jitter", "loss", "congestion"))
        names = {
            "latency": ["HIGH_RTT"],
            "jitter": ["HIGH_JITTER", "LOW_MOS"],
            "loss": ["HIGH_PACKET_LOSS", "LOW_MOS"],
            "congestion": ["HIGH_RTT", "HIGH_JITTER", "HIGH_PACKET_LOSS", "LOW_MOS"],
        }[trouble]
        for _ in range(rng.randint(1, 3)):
            at = rng.uniform(min(5, self.measured_until), self.measured_until)
            metrics = self._metrics(trouble, bad)
            for name in names:
                if name == names[0] or rng.random() < 0.5:
                    self._warning(at, name, metrics)

    def _metrics(self, trouble: str, bad: bool) -> dict:
        """What the runner measured when it warned: one snapshot of all four figures."""
        rng = self.rng
        worse = 1.4 if bad else 1.0
        rtt = rng.uniform(60, 180)
        jitter = rng.uniform(4, 18)
        loss = rng.uniform(0, 1.5)
        if trouble in ("latency", "congestion"):
            rtt = rng.lognormvariate(math.log(420 * worse), 0.35)
        if trouble in ("jitter", "congestion"):
            jitter = rng.lognormvariate(math.log(55 * worse), 0.35)
        if trouble in ("loss", "congestion"):
            loss = min(rng.lognormvariate(math.log(6 * worse), 0.5), 60)
        # A rough E-model: latency, jitter and loss each take their share off a clean 4.4.
        mos = 4.4 - rtt / 600 - jitter / 45 - loss / 4.5 + rng.uniform(-0.15, 0.15)
        return {
            "rtt_ms": round(rtt),
            "jitter_ms": round(jitter, 1),
            "packet_loss_pct": round(loss, 2),
            "mos": round(min(max(mos, 1.0), 4.5), 2),
        }


# ---------------------------------------------------------------------------------------------
# Pushing


def demo_push(
    *,
    project: Project,
    hours: int = DEFAULT_HOURS,
    sessions: int = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Build the demo day for ``project`` with its own crash message and idle timeout and LPUSH
    it onto the ingest queue in chunks; ``progress(pushed, total)`` after each chunk."""
    settings = session_settings_get(project=project)
    items = demo_items(
        project_id=str(project.id),
        hours=hours,
        sessions=sessions,
        seed=seed,
        crash_message=settings.error_message,
        idle_timeout_seconds=settings.idle_timeout_seconds,
    )
    already = project.events.filter(event_id__startswith=f"demo-{seed}-").count()
    for offset in range(0, len(items), PUSH_CHUNK):
        enqueue([orjson.dumps(item) for item in items[offset : offset + PUSH_CHUNK]])
        if progress is not None:
            progress(min(offset + PUSH_CHUNK, len(items)), len(items))
    return DemoSummary(
        project_id=str(project.id),
        seed=seed,
        sessions=sessions,
        hours=hours,
        items=len(items),
        item_types=dict(Counter(_item_type(item) for item in items).most_common()),
        already_stored=already,
        workers_alive=_workers_alive(),
    )


def _item_type(item: dict) -> str:
    return item["name"] if item["type"] == "sdk_event" else item["type"]


def _workers_alive() -> int:
    """Ingest workers whose heartbeat is current: without one, the items wait in the queue."""
    return sum(1 for _ in redis_client().scan_iter(match=heartbeat_key("*"), count=100))


class DemoProjectUnclear(Exception):
    """No project was named and none can be chosen or created; the message says what to do."""


@transaction.atomic
def demo_project_pick(*, project_id: str | None = None) -> tuple[Project, bool]:
    """The project ``manage.py demo`` fills, and whether it was created: the one named; else the
    only project there is (the one ``make run`` creates); else the project named "Demo project",
    created if need be with every active superuser as its owner."""
    if project_id is not None:
        try:
            return Project.objects.get(id=project_id), False
        except (Project.DoesNotExist, ValidationError, ValueError):
            raise DemoProjectUnclear(f"no project with id {project_id!r}") from None
    projects = list(Project.objects.order_by("created_at")[:2])
    if len(projects) == 1:
        return projects[0], False
    existing = Project.objects.filter(name=DEMO_PROJECT_NAME).order_by("created_at").first()
    if existing is not None:
        return existing, False
    owners = list(get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("id"))
    if not owners:
        raise DemoProjectUnclear(
            "pass --project ID, or create a superuser first (manage.py createsuperuser) "
            f"to own a new {DEMO_PROJECT_NAME!r}"
        )
    project = project_create(name=DEMO_PROJECT_NAME, owner=owners[0])
    for user in owners[1:]:
        project_add_member(project=project, user=user, role=Membership.OWNER)
    return project, True
