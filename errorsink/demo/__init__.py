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

from errorsink.demo.calls import demo_items
from errorsink.demo.day import (
    BUILDS,
    DEFAULT_HOURS,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DEMO_PROJECT_NAME,
    MAX_HOURS,
    MAX_SESSIONS,
    REGRESSION,
)
from errorsink.demo.push import DemoProjectUnclear, DemoSummary, demo_project_pick, demo_push

__all__ = [
    "BUILDS",
    "DEFAULT_HOURS",
    "DEFAULT_SEED",
    "DEFAULT_SESSIONS",
    "DEMO_PROJECT_NAME",
    "MAX_HOURS",
    "MAX_SESSIONS",
    "REGRESSION",
    "DemoProjectUnclear",
    "DemoSummary",
    "demo_items",
    "demo_project_pick",
    "demo_push",
]
