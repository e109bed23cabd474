"""The demo day's queue items, session by session (pure: no database or Redis)."""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from errorsink.catalog import lookup
from errorsink.demo.day import (
    BUILDS,
    CHILD_STACKS,
    CONNECTED,
    DEFAULT_HOURS,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    HANDLER_STACKS,
    LOCALES,
    NETWORK,
    OUTCOMES,
    REGRESSION_STACK,
    SDK_ERRORS,
    SDK_WARNINGS,
    TIERS,
    TURN_MODELS,
    TURNS_LLM_SLOWER,
    TURNS_MAX,
    WARNING_MESSAGES,
)
from errorsink.projects.models import (
    DEFAULT_ERROR_MESSAGE,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
)

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
            self._turns()

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

    def _turns(self) -> None:
        """The turns Pipecat traced while the call talked (OTLP spans, as the receiver queues
        them): the turn with its voice-to-voice, and its STT, LLM and TTS stages. The
        regression's bigger prompt makes its LLM slower to the first token. Drawn from a
        generator of their own, after everything else: the rest of the day stays as it was."""
        rng = random.Random(f"{self.event_prefix}:turns")
        slower = TURNS_LLM_SLOWER if self.build.regression else 1.0
        trace = f"{rng.getrandbits(127) + 1:032x}"
        at, number = rng.uniform(0.5, 2.0), 1
        while at < self.measured_until and number <= TURNS_MAX:
            stages = {
                "stt": rng.lognormvariate(math.log(220), 0.25),
                "llm": rng.lognormvariate(math.log(520 * slower), 0.35),
                "tts": rng.lognormvariate(math.log(170), 0.3),
            }
            span = f"{rng.getrandbits(63) + 1:016x}"
            turn = {"type": "turn", "part": "turn", "framework": "pipecat", "trace_id": trace,
                    "span_id": span, "session_id": self.session_id, "number": number,
                    "interrupted": rng.random() < 0.08}  # fmt: skip
            if number > 1:  # the greeting comes before anyone spoke: no voice-to-voice
                total = sum(stages.values()) + rng.uniform(150, 350)
                turn["metrics"] = {"voice_to_voice_ms": round(total, 1)}
            self._push(at, turn)
            for part, ms in stages.items():
                provider, model = TURN_MODELS[part]
                self._push(at, {"type": "turn", "part": part, "framework": "pipecat",
                                "trace_id": trace, "span_id": f"{rng.getrandbits(63) + 1:016x}",
                                "parent_span_id": span, "session_id": self.session_id,
                                "provider": provider, "model": model,
                                "metrics": {f"{part}_ms": round(ms, 1)}})  # fmt: skip
            at += rng.uniform(8, 20)
            number += 1

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
