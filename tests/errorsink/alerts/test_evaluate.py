"""Alert rules evaluated against the real PostgreSQL (docs/alerts.md): a simulated stream of
errors stored by the ingest code, the evaluator run at chosen moments, and the firings compared
with a recount of the stream: never one event early, once per cooldown, again after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errorsink.alerts.evaluate import alerts_evaluate
from errorsink.alerts.models import AlertCount, AlertDelivery, AlertFiring, AlertRule, AlertSignal
from errorsink.alerts.rules import RuleIn, rule_create
from errorsink.ingest.batch import batch_rows
from errorsink.ingest.persist import events_persist
from errorsink.issues.models import Issue
from errorsink.issues.selectors import issue_status_set
from errorsink.sessions.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WEBHOOK = [{"type": "webhook", "url": "https://hooks.example.com/hook"}]
_serial = iter(range(10**9))


def _store(project, at: datetime, count: int = 1, *, code: str = "AGENT_HANDLER_FAILED",
           message: str = "handler threw", kind: str = "session_error") -> None:  # fmt: skip
    """``count`` errors arriving at ``at`` (arrival is what the counters go by)."""
    items = [orjson.dumps({"type": kind, "project_id": str(project.id), "code": code,
                           "event_id": f"a{next(_serial)}", "session_id": "s1",
                           "message": message, "occurred_at": at.isoformat()})
             for _ in range(count)]  # fmt: skip
    events_persist(batch_rows(items, received_at=at).rows)


def _rule(project, condition: dict, cooldown: int = 120) -> AlertRule:
    data = RuleIn(condition=condition, channels=WEBHOOK, cooldown_seconds=cooldown)
    return rule_create(project=project, data=data)


def _firings(rule: AlertRule) -> list[datetime]:
    return list(
        AlertFiring.objects.filter(rule=rule).order_by("id").values_list("fired_at", flat=True)
    )


@pytest.fixture(autouse=True)
def _no_celery(monkeypatch):
    # Deliveries are the delivery tests' concern: here only what was recorded matters.
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda pk: None)


def test_it_fires_on_the_event_that_passes_the_threshold_not_one_earlier(project):
    rule = _rule(project, {"type": "event_count", "threshold": 3, "window_seconds": 60})
    for n in range(3):
        _store(project, T0 + timedelta(seconds=n))
        alerts_evaluate(now=T0 + timedelta(seconds=n))
    assert _firings(rule) == []  # 3 errors: not MORE than 3
    _store(project, T0 + timedelta(seconds=3))
    alerts_evaluate(now=T0 + timedelta(seconds=3))
    assert _firings(rule) == [T0 + timedelta(seconds=3)]
    firing = AlertFiring.objects.get(rule=rule)
    assert (firing.value, firing.threshold) == (4, 3)
    assert len(firing.body["sample"]) == 4 and firing.body["project"]["name"] == project.name
    assert AlertDelivery.objects.filter(firing=firing).count() == 1


def test_it_fires_once_per_cooldown_and_again_after_it_while_the_condition_holds(project):
    rule = _rule(project, {"type": "event_count", "threshold": 0, "window_seconds": 600},
                 cooldown=120)  # fmt: skip
    for second in range(0, 300, 10):
        _store(project, T0 + timedelta(seconds=second))
        alerts_evaluate(now=T0 + timedelta(seconds=second))
    assert _firings(rule) == [T0, T0 + timedelta(seconds=120), T0 + timedelta(seconds=240)]


def test_it_does_not_fire_after_the_cooldown_once_the_window_has_emptied(project):
    rule = _rule(project, {"type": "event_count", "threshold": 1, "window_seconds": 60})
    _store(project, T0, count=2)
    alerts_evaluate(now=T0)
    alerts_evaluate(now=T0 + timedelta(seconds=200))
    assert _firings(rule) == [T0]
    assert AlertRule.objects.get(id=rule.id).holding is False


def test_a_code_rule_counts_only_its_code(project):
    rule = _rule(project, {"type": "event_count", "threshold": 1, "window_seconds": 60,
                           "code": "TOOL_FAILED"})  # fmt: skip
    _store(project, T0, count=5)
    _store(project, T0, count=1, code="TOOL_FAILED")
    alerts_evaluate(now=T0)
    assert _firings(rule) == []
    _store(project, T0 + timedelta(seconds=1), code="TOOL_FAILED")
    alerts_evaluate(now=T0 + timedelta(seconds=1))
    assert len(_firings(rule)) == 1
    assert "code=TOOL_FAILED" in AlertFiring.objects.get(rule=rule).url


def test_an_issue_rule_counts_only_that_issues_errors_and_links_to_it(project):
    _store(project, T0, message="one thing")
    _store(project, T0, message="another thing")
    issue = Issue.objects.get(project=project, title="one thing")
    rule = _rule(project, {"type": "event_count", "threshold": 1, "window_seconds": 60,
                           "issue_id": issue.id})  # fmt: skip
    _store(project, T0 + timedelta(seconds=1), count=3, message="another thing")
    _store(project, T0 + timedelta(seconds=1), message="one thing")
    alerts_evaluate(now=T0 + timedelta(seconds=1))
    assert _firings(rule) == []
    _store(project, T0 + timedelta(seconds=2), message="one thing")
    alerts_evaluate(now=T0 + timedelta(seconds=2))
    firing = AlertFiring.objects.get(rule=rule)
    assert firing.url.endswith(f"/issues/{issue.id}/")


def test_new_issue_and_regression_rules_fire_on_ingests_signals(project):
    new_rule = _rule(project, {"type": "new_issue"}, cooldown=10)
    regression_rule = _rule(project, {"type": "regression"}, cooldown=10)
    _store(project, T0, message="first crash")
    alerts_evaluate(now=T0)
    assert len(_firings(new_rule)) == 1 and _firings(regression_rule) == []
    _store(project, T0 + timedelta(seconds=30), message="first crash")  # same issue: not new
    alerts_evaluate(now=T0 + timedelta(seconds=30))
    assert len(_firings(new_rule)) == 1
    issue = Issue.objects.get(project=project)
    issue_status_set(issue=issue, status="resolved")
    _store(project, T0 + timedelta(seconds=60), message="first crash")
    alerts_evaluate(now=T0 + timedelta(seconds=60))
    assert len(_firings(regression_rule)) == 1 and len(_firings(new_rule)) == 1
    firing = AlertFiring.objects.get(rule=regression_rule)
    assert firing.url.endswith(f"/issues/{issue.id}/")
    assert not AlertSignal.objects.exists()  # taken, not piled up


def test_a_degraded_share_rule_needs_its_minimum_of_sessions(project):
    rule = _rule(project, {"type": "degraded_share", "threshold": 0.5, "window_seconds": 3600,
                           "min_sessions": 4})  # fmt: skip
    for n, degraded in enumerate([True, True, False]):
        Session.objects.create(project=project, session_id=f"q{n}", degraded=degraded,
                               first_seen=T0, last_seen=T0)  # fmt: skip
    alerts_evaluate(now=T0 + timedelta(minutes=1))
    assert _firings(rule) == []  # 67 % degraded, but only 3 sessions
    Session.objects.create(project=project, session_id="q3", first_seen=T0, last_seen=T0)
    alerts_evaluate(now=T0 + timedelta(minutes=2))
    assert len(_firings(rule)) == 1
    assert AlertFiring.objects.get(rule=rule).value == 0.5


def test_a_muted_rule_never_fires(project):
    rule = _rule(project, {"type": "event_count", "threshold": 0, "window_seconds": 60})
    AlertRule.objects.filter(id=rule.id).update(muted=True)
    _store(project, T0)
    alerts_evaluate(now=T0)
    assert _firings(rule) == []


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    arrivals=st.lists(st.tuples(st.integers(0, 240), st.integers(1, 3)), max_size=25),
    threshold=st.integers(0, 6),
    window=st.sampled_from([60, 120]),
    cooldown=st.sampled_from([10, 60, 300]),
)
def test_firings_equal_a_recount_of_the_stream(project, arrivals, threshold, window, cooldown):
    AlertRule.objects.all().delete()
    rule = _rule(project, {"type": "event_count", "threshold": threshold,
                           "window_seconds": window}, cooldown=cooldown)  # fmt: skip
    by_second: dict[int, int] = {}
    for second, count in arrivals:
        by_second[second] = by_second.get(second, 0) + count
    for second in range(0, 400):
        if second in by_second:
            _store(project, T0 + timedelta(seconds=second), count=by_second[second])
        if _is_tick(second, by_second, window):
            alerts_evaluate(now=T0 + timedelta(seconds=second))
    assert _firings(rule) == _recount(by_second, threshold, window, cooldown)
    assert AlertCount.objects.filter(rule=rule).count() == len(by_second)


def _is_tick(second: int, by_second: dict, window: int) -> bool:
    # The evaluator runs after every arrival, at both sides of the moment each arrival leaves
    # the window, and every 7 s between.
    return any(second - edge in by_second for edge in (0, window - 1, window)) or second % 7 == 0


def _recount(by_second, threshold, window, cooldown) -> list[datetime]:
    """When the rule should have fired, from the stream itself."""
    expected, last = [], None
    for second in range(0, 400):
        if not _is_tick(second, by_second, window):
            continue
        in_window = sum(c for s, c in by_second.items() if second - window < s <= second)
        if in_window > threshold and (last is None or second - last >= cooldown):
            expected.append(T0 + timedelta(seconds=second))
            last = second
    return expected


def test_an_error_leaves_the_window_exactly_window_seconds_after_it_arrived(project):
    rule = _rule(project, {"type": "event_count", "threshold": 0, "window_seconds": 60},
                 cooldown=10)  # fmt: skip
    _store(project, T0)
    for second in (0, 50, 60):
        alerts_evaluate(now=T0 + timedelta(seconds=second))
    assert _firings(rule) == [T0, T0 + timedelta(seconds=50)]  # at 60 s it has left


def _turns(project, at: datetime, llm_ms: list[float]) -> None:
    """Turns with an LLM stage each, stored by the ingest code and rolled up."""
    from errorsink.quality.rollups import rollups_update

    items = []
    for value in llm_ms:
        n = next(_serial)
        common = {"type": "turn", "project_id": str(project.id), "trace_id": f"{n + 1:032x}",
                  "occurred_at": at.isoformat()}  # fmt: skip
        items.append(orjson.dumps({**common, "part": "turn", "span_id": f"{n + 1:016x}",
                                   "session_id": f"call{n}",
                                   "metrics": {"voice_to_voice_ms": value * 2}}))  # fmt: skip
        items.append(orjson.dumps({**common, "part": "llm", "span_id": f"{n + 1:08x}" * 2,
                                   "parent_span_id": f"{n + 1:016x}",
                                   "metrics": {"llm_ms": value}}))  # fmt: skip
    events_persist(batch_rows(items, received_at=at).rows)
    rollups_update()
    rollups_update()


def test_a_latency_rule_fires_on_its_stages_p95_once_enough_turns_were_measured(project):
    now = datetime.now(UTC).replace(microsecond=0)
    llm = _rule(project, {"type": "latency_p95", "stage": "llm", "threshold_ms": 800,
                          "window_seconds": 600, "min_turns": 5})  # fmt: skip
    voice = _rule(project, {"type": "latency_p95", "threshold_ms": 5000, "window_seconds": 10800,
                            "min_turns": 5})  # fmt: skip
    assert voice.condition["stage"] == "voice_to_voice"
    _turns(project, now - timedelta(minutes=2), [900.0] * 4)
    alerts_evaluate(now=now)
    assert _firings(llm) == []  # p95 900 ms, but only 4 turns
    _turns(project, now - timedelta(minutes=1), [950.0])
    alerts_evaluate(now=now + timedelta(seconds=2))
    firing = AlertFiring.objects.get(rule=llm)
    assert firing.value == pytest.approx(950.0, rel=0.01)
    assert [event["code"] for event in firing.body["sample"]] == ["turn"] * 5  # the slowest turns
    assert firing.threshold == firing.body["threshold"] == 800
    assert firing.body["url"].endswith("#latency-panel")
    assert _firings(voice) == []  # 1,900 ms against 5,000
    AlertRule.objects.filter(id=voice.id).update(condition={**voice.condition,
                                                            "threshold_ms": 1800})  # fmt: skip
    alerts_evaluate(now=now + timedelta(seconds=4))
    assert len(_firings(voice)) == 1  # three hours: read from hour rows
