"""The latency figures (errorsink/turns/figures.py) against a recount of the stored turns: turn
counts exact, voice-to-voice and stage percentiles within the DDSketch's 1 % of the nearest-rank
value, per build and overall; absurd values left out; the slowest turns in order."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errorsink.ingest.queue import enqueue
from errorsink.ingest.reader import QueueReader
from errorsink.quality.sketches import RELATIVE_ACCURACY
from errorsink.turns.figures import project_latency
from tests.errorsink.conftest import drain
from tests.errorsink.quality.test_rollups import _clear, _settle

pytestmark = pytest.mark.django_db(transaction=True)
STAGE_METRICS = ("stt_ms", "llm_ms", "tts_ms", "end_of_turn_ms")

latency = st.one_of(st.floats(0, 8000), st.just(-25.0), st.just(4_000_000.0))
turn_strategy = st.fixed_dictionaries({
    "voice_to_voice_ms": st.one_of(st.none(), latency),
    "stt_ms": latency, "llm_ms": latency, "tts_ms": latency,
    "minutes_ago": st.integers(0, 23 * 60),
})  # fmt: skip
sessions_strategy = st.lists(
    st.tuples(st.sampled_from(["b1", "b2", ""]), st.lists(turn_strategy, min_size=1, max_size=6)),
    min_size=1, max_size=6,
)  # fmt: skip


def _items(project_id, sessions, now) -> list[bytes]:
    items = []
    for n, (build, turns) in enumerate(sessions):
        for t, turn in enumerate(turns):
            trace, span = f"{n + 1:032x}", f"{t + 1:08x}{n + 1:08x}"
            at = (now - timedelta(minutes=turn["minutes_ago"])).isoformat()
            common = {"project_id": str(project_id), "trace_id": trace, "occurred_at": at,
                      "type": "turn", **({"build_id": build} if build else {})}  # fmt: skip
            voice = turn["voice_to_voice_ms"]
            items.append({**common, "part": "turn", "span_id": span, "session_id": f"s{n}",
                          "number": t + 1,
                          **({"metrics": {"voice_to_voice_ms": voice}} if voice is not None
                             else {})})  # fmt: skip
            for i, metric in enumerate(("stt_ms", "llm_ms", "tts_ms")):
                items.append(
                    {
                        **common,
                        "part": metric[:3],
                        "span_id": f"{i + 1:04x}{span[4:]}",
                        "parent_span_id": span,
                        "metrics": {metric: turn[metric]},
                    }
                )
    return [orjson.dumps(item) for item in items]


def _valid(values) -> list[float]:
    return [value for value in values if value is not None and 0 <= value <= 3_600_000]


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def _close(estimate, exact) -> bool:
    return abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 0.1  # rounded to 0.1 ms


def _assert_figure(figure: dict, values: list[float]) -> None:
    assert figure["count"] == len(values)
    if not values:
        assert figure["p95"] is None
        return
    for name, fraction in (("p50", 0.5), ("p95", 0.95)):
        assert _close(figure[name], _nearest_rank(values, fraction)), (name, figure, values)


@settings(max_examples=8, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(sessions=sessions_strategy)
def test_latency_figures_match_a_recount(project, clean_queue, sessions):
    _clear()
    now = timezone.now()
    enqueue(_items(project.id, sessions, now))
    drain(QueueReader(batch_size=500, notify=lambda message: None))
    _settle()

    by_build = defaultdict(lambda: defaultdict(list))
    for build, turns in sessions:
        for turn in turns:
            for metric in ("voice_to_voice_ms", *STAGE_METRICS[:3]):
                by_build[build][metric].append(turn[metric])
            by_build[build]["turns"].append(1)
    figures = project_latency(project_id=project.id, window="24h", now=now)
    assert figures["turns"] == sum(len(turns) for _, turns in sessions)
    everything = defaultdict(list)
    for metrics in by_build.values():
        for metric, values in metrics.items():
            everything[metric] += values
    _assert_figure(figures["voice_to_voice"], _valid(everything["voice_to_voice_ms"]))
    for metric in ("stt_ms", "llm_ms", "tts_ms"):
        _assert_figure(figures["stages"][metric], _valid(everything[metric]))
    rows = {row["build_id"]: row for row in figures["builds"]}
    assert set(rows) == set(by_build)
    for build, metrics in by_build.items():
        assert rows[build]["turns"] == len(metrics["turns"])
        _assert_figure(rows[build]["voice_to_voice"], _valid(metrics["voice_to_voice_ms"]))
    slowest = [row["voice_to_voice_ms"] for row in figures["slowest"]]
    assert slowest == sorted(_valid(everything["voice_to_voice_ms"]), reverse=True)[:10]
    one = project_latency(project_id=project.id, window="24h", build_id="b1", now=now)
    assert one["turns"] == len(by_build["b1"]["turns"]) if "b1" in by_build else one["turns"] == 0


def test_the_api_answers_the_figures_and_refuses_a_bad_window(project, clean_queue):
    from django.test import Client

    from errorsink.projects.api_keys import api_key_create

    _clear()
    now = timezone.now()
    turn = {"voice_to_voice_ms": 1300.0, "stt_ms": 210.0, "llm_ms": 640.0, "tts_ms": 120.0,
            "minutes_ago": 1}  # fmt: skip
    enqueue(_items(project.id, [("b9", [turn, {**turn, "voice_to_voice_ms": 1700.0}])], now))
    drain(QueueReader(batch_size=500, notify=lambda message: None))
    _settle()
    key = api_key_create(project=project, scopes=["errors:read"])[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = client.get(f"/api/v1/projects/{project.id}/latency?window=1h").json()
    assert body["turns"] == 2 and body["window"]["bucket"] == "minute"
    assert body["voice_to_voice"]["count"] == 2
    assert _close(body["voice_to_voice"]["p95"], 1700.0)
    assert _close(body["stages"]["llm_ms"]["p95"], 640.0)
    assert [row["build_id"] for row in body["builds"]] == ["b9"]
    assert [row["voice_to_voice_ms"] for row in body["slowest"]] == [1700.0, 1300.0]
    assert body["slowest"][0]["session_id"] == "s0"
    refused = client.get(f"/api/v1/projects/{project.id}/latency?window=2y")
    assert refused.status_code == 422


def test_the_project_page_shows_the_latency_panel_with_a_slower_build_marked(
    project, clean_queue, alice
):  # fmt: skip
    from django.test import Client

    _clear()
    now = timezone.now()

    def turns(voice: float, minutes_ago: int) -> list[dict]:
        return [{"voice_to_voice_ms": voice + n, "stt_ms": 200.0, "llm_ms": voice / 2,
                 "tts_ms": 150.0, "minutes_ago": minutes_ago} for n in range(20)]  # fmt: skip

    enqueue(_items(project.id, [("v1", turns(900.0, 50)), ("v2", turns(1900.0, 10))], now))
    drain(QueueReader(batch_size=500, notify=lambda message: None))
    _settle()
    client = Client()
    client.force_login(alice)
    page = client.get(f"/projects/{project.id}/?window=1h").content.decode()
    assert "How long callers wait" in page and 'id="latency-p95"' in page
    assert "slower than v1</span> voice-to-voice p95" in page
    assert page.count('<li><a href="/projects/') >= 10  # the slowest turns, linked
    assert f"/projects/{project.id}/sessions/s1/#tl-event-" in page


def test_a_project_without_turns_says_how_to_send_them(project, alice):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "No voice turns in the last 24 h" in page and "/v1/traces" in page


def test_the_figures_cost_three_reads_however_many_turns_and_builds(
    project, clean_queue, django_assert_num_queries
):  # fmt: skip
    _clear()
    now = timezone.now()
    turn = {"voice_to_voice_ms": 1000.0, "stt_ms": 1.0, "llm_ms": 2.0, "tts_ms": 3.0,
            "minutes_ago": 5}  # fmt: skip
    for builds in (2, 12):
        enqueue(_items(project.id, [(f"b{n}", [turn] * 3) for n in range(builds)], now))
        drain(QueueReader(batch_size=500, notify=lambda message: None))
        _settle()
        with django_assert_num_queries(3):  # turn counts, latencies, the slowest turns
            figures = project_latency(project_id=project.id, window="7d", now=now)
        assert len(figures["builds"]) == builds


def test_a_session_with_turns_alone_is_not_an_active_call_in_the_quality_figures(
    project, clean_queue
):  # fmt: skip
    from errorsink.quality.figure_reads import project_quality

    _clear()
    now = timezone.now()
    turn = {"voice_to_voice_ms": 900.0, "stt_ms": 1.0, "llm_ms": 2.0, "tts_ms": 3.0,
            "minutes_ago": 3}  # fmt: skip
    enqueue(_items(project.id, [("b1", [turn])], now))
    enqueue([orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                           "session_id": "call-w", "code": "HIGH_JITTER",
                           "occurred_at": now.isoformat()})])  # fmt: skip
    drain(QueueReader(batch_size=500, notify=lambda message: None))
    _settle()
    quality = project_quality(project_id=project.id, window="1h", now=now)
    assert quality["sessions"]["active"] == 1  # the warned call; "s0" had turns only
    assert project_latency(project_id=project.id, window="1h", now=now)["turns"] == 1
