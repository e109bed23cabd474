"""Evaluate the alert rules (docs/alerts.md), every two seconds on the worker.

Nothing here scans the event table: an event-count rule sums its per-second counters (which
ingest keeps, errorsink/ingest/alert_feed.py), a new-issue or regression rule takes the signals
ingest left, and a degraded-share rule counts the sessions started in its window. A rule fires
when its condition holds and its cooldown has passed since it last fired: once per cooldown,
and again after it if the condition still holds. Firing records the body every channel is sent
and one delivery per channel; the caller hands the deliveries to Celery after commit
(errorsink/tasks.py, errorsink/alerts/delivery.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from errorsink.advisory_lock import advisory_lock
from errorsink.alerts.links import DashboardLinks, links_registered
from errorsink.alerts.models import (
    DEGRADED_SHARE,
    EVENT_COUNT,
    LATENCY_P95,
    NEW_ISSUE,
    REGRESSION,
    AlertDelivery,
    AlertFiring,
    AlertRule,
)
from errorsink.alerts.rules import rule_describe
from errorsink.sessions.models import Event
from errorsink.sessions.serialise import event_out
from errorsink.turns.figures import latency_recent, slowest_turns

EVALUATE_LOCK = 0x616C657274  # "alert": one evaluation at a time across workers
SAMPLE_SIZE = 5
COUNTS_KEPT_SECONDS = 24 * 3600 + 60


@dataclass
class Evaluation:
    """What one run of the evaluator saw and did."""

    rules: int = 0
    fired: list[int] = field(default_factory=list)  # rule ids
    deliveries: list[int] = field(default_factory=list)  # to attempt once committed
    skipped: bool = False  # another run held the lock


def should_fire(
    *, holds: bool, last_fired_at: datetime | None, cooldown_seconds: int, now: datetime
) -> bool:
    """Whether a rule whose condition holds (or not) fires now: once per cooldown."""
    if not holds:
        return False
    return last_fired_at is None or now - last_fired_at >= timedelta(seconds=cooldown_seconds)


def rule_firing_now(rule: AlertRule, now: datetime | None = None) -> bool:
    """Whether a rule is firing: its condition held at the last evaluation (a count, share or
    latency), or it fired within its cooldown (a new issue or regression, which are moments)."""
    if rule.muted:
        return False
    if rule.kind in (EVENT_COUNT, DEGRADED_SHARE, LATENCY_P95):
        return rule.holding
    now = now or timezone.now()
    cooldown = timedelta(seconds=rule.cooldown_seconds)
    return rule.last_fired_at is not None and now - rule.last_fired_at < cooldown


def alerts_firing(*, project) -> list[AlertRule]:
    """The project's rules firing now, for the banner on its page: one query."""
    now = timezone.now()
    rules = AlertRule.objects.filter(project=project, muted=False).order_by("id")
    return [rule for rule in rules if rule_firing_now(rule, now)]


def alerts_evaluate(now: datetime | None = None, links: DashboardLinks | None = None) -> Evaluation:
    """Evaluate every unmuted rule once; fire those whose condition holds past their cooldown.
    The deliveries of what fired come back for the caller to start."""
    with advisory_lock(EVALUATE_LOCK) as taken:
        if not taken:
            return Evaluation(skipped=True)
        return _evaluate(now or timezone.now(), links or links_registered())


def _evaluate(now: datetime, links: DashboardLinks) -> Evaluation:
    signals = _signals_take()
    rules = list(AlertRule.objects.filter(muted=False).select_related("project").order_by("id"))
    counts = _event_counts([r for r in rules if r.kind == EVENT_COUNT], now)
    result = Evaluation(rules=len(rules))
    for rule in rules:
        value, holds, sample = _measure(rule, now, counts, signals)
        fire = should_fire(holds=holds, last_fired_at=rule.last_fired_at,
                           cooldown_seconds=rule.cooldown_seconds, now=now)  # fmt: skip
        if fire or (holds, value) != (rule.holding, rule.last_value):
            # Written only when something moved: an idle rule costs no write every 2 s.
            with transaction.atomic():
                if fire:
                    _, deliveries = firing_record(
                        rule, value=value, sample=sample(), now=now, links=links
                    )
                    result.deliveries.extend(deliveries)
                    rule.last_fired_at = now
                    result.fired.append(rule.id)
                rule.holding, rule.last_value = holds, value
                rule.save(update_fields=["holding", "last_value", "last_fired_at"])
    AlertRule.objects.filter(id__in=[rule.id for rule in rules]).update(last_evaluated_at=now)
    _counts_prune(now)
    return result


def _measure(rule: AlertRule, now: datetime, counts: dict, signals: dict):
    """The rule's value now, whether its condition holds, and a function giving its sample."""
    condition = rule.condition
    if rule.kind == EVENT_COUNT:
        value = counts.get(rule.id, 0)
        return value, value > condition["threshold"], lambda: _errors_sample(rule, now)
    if rule.kind == DEGRADED_SHARE:
        started, degraded = _sessions_in_window(rule, now)
        share = degraded / started if started else 0.0
        holds = started >= condition.get("min_sessions", 20) and share >= condition["threshold"]
        return share, holds, lambda: _warnings_sample(rule, now)
    if rule.kind == LATENCY_P95:
        p95, turns = latency_recent(
            project_id=rule.project_id, metric=f"{condition.get('stage', 'voice_to_voice')}_ms",
            seconds=condition["window_seconds"], now=now,
        )  # fmt: skip
        holds = p95 is not None and turns >= condition.get("min_turns", 20)
        holds = holds and p95 >= condition["threshold_ms"]
        return p95 or 0.0, holds, lambda: _turns_sample(rule, now)
    issue_ids = signals.get((rule.project_id, rule.kind), [])
    return len(issue_ids), bool(issue_ids), lambda: _issues_sample(rule, issue_ids)


def _signals_take() -> dict[tuple, list[int]]:
    """The issues ingest created or reopened since the last run, by (project, kind); taken
    (deleted) whether a rule wants them or not, so they never pile up."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM errorsink_alert_signal RETURNING project_id, kind, issue_id, id"
        )
        rows = sorted(cursor.fetchall(), key=lambda row: row[3])
    signals: dict[tuple, list[int]] = defaultdict(list)
    for project_id, kind, issue_id, _ in rows:
        if issue_id not in signals[project_id, kind]:
            signals[project_id, kind].append(issue_id)
    return signals


def _event_counts(rules: list[AlertRule], now: datetime) -> dict[int, int]:
    """Each rule's errors in its window: the last window-seconds whole seconds of arrival."""
    if not rules:
        return {}
    now_second = int(now.timestamp())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.rule_id, sum(c.count) FROM errorsink_alert_count c "
            "JOIN unnest(%s::bigint[], %s::bigint[]) AS w(rule_id, after) "
            "ON c.rule_id = w.rule_id AND c.second > w.after AND c.second <= %s "
            "GROUP BY c.rule_id",
            [[r.id for r in rules],
             [now_second - r.condition["window_seconds"] for r in rules], now_second],
        )  # fmt: skip
        return {rule_id: int(total) for rule_id, total in cursor.fetchall()}


def _sessions_in_window(rule: AlertRule, now: datetime) -> tuple[int, int]:
    since = now - timedelta(seconds=rule.condition["window_seconds"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE degraded) FROM errorsink_session "
            "WHERE project_id = %s AND first_seen > %s AND first_seen <= %s",
            [rule.project_id, since, now],
        )
        return cursor.fetchone()


def _counts_prune(now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM errorsink_alert_count WHERE second < %s",
            [int(now.timestamp()) - COUNTS_KEPT_SECONDS],
        )


def _errors_sample(rule: AlertRule, now: datetime) -> list[Event]:
    errors = Event.objects.filter(project_id=rule.project_id, kind="error").order_by("-id")
    if rule.condition.get("code"):
        errors = errors.filter(code=rule.condition["code"])
    if rule.issue_fingerprint:
        errors = errors.filter(fingerprint=rule.issue_fingerprint)
    return list(errors[:SAMPLE_SIZE])


def _warnings_sample(rule: AlertRule, now: datetime) -> list[Event]:
    warnings = Event.objects.filter(project_id=rule.project_id, kind="warning")
    return list(warnings.order_by("-id")[:SAMPLE_SIZE])


def _turns_sample(rule: AlertRule, now: datetime) -> list[Event]:
    """The window's slowest turns (voice-to-voice), whichever stage the rule watches."""
    since = now - timedelta(seconds=rule.condition["window_seconds"])
    return slowest_turns(project_id=rule.project_id, since=since, limit=SAMPLE_SIZE)


def _issues_sample(rule: AlertRule, issue_ids: list[int]) -> list[Event]:
    """The newest error of each issue that made the rule fire."""
    from errorsink.issues.models import Issue

    issues = Issue.objects.filter(project_id=rule.project_id, id__in=issue_ids[:SAMPLE_SIZE])
    sample = []
    for issue in issues.order_by("id"):
        newest = (Event.objects.filter(project_id=rule.project_id, kind="error",
                                       fingerprint=issue.fingerprint)
                  .order_by("-id").first())  # fmt: skip
        if newest is not None:
            sample.append(newest)
    return sample


def firing_record(
    rule: AlertRule,
    *,
    value: float,
    sample: list[Event],
    now: datetime,
    links: DashboardLinks,
    test: bool = False,
) -> tuple[AlertFiring, list[int]]:
    """Record a firing and one delivery per channel; returns it and the deliveries' ids, which
    the caller starts once the transaction commits."""
    url = dashboard_url(rule, sample, links)
    firing = AlertFiring.objects.create(
        rule=rule, fired_at=now, value=value, threshold=_threshold(rule),
        url=url, test=test, body=firing_body(rule, value=value, sample=sample, now=now,
                                             url=url, test=test),
    )  # fmt: skip
    deliveries = AlertDelivery.objects.bulk_create(
        AlertDelivery(firing=firing, channel=channel) for channel in rule.channels
    )
    return firing, [delivery.id for delivery in deliveries]


def firing_body(
    rule: AlertRule, *, value: float, sample: list[Event], now: datetime, url: str, test: bool
) -> dict:
    """The webhook body of docs/alerts.md (Slack and email are written from it)."""
    return {
        "rule": {"id": rule.id, "name": rule.name, "condition": rule.condition,
                 "description": rule_describe(rule.condition),
                 "cooldown_seconds": rule.cooldown_seconds},
        "project": {"id": str(rule.project_id), "name": rule.project.name},
        "fired_at": now.isoformat(),
        "value": value,
        "threshold": _threshold(rule),
        "url": url,
        "test": test,
        "sample": [_jsonable(event_out(event)) for event in sample],
    }  # fmt: skip


def _threshold(rule: AlertRule) -> float | None:
    return rule.condition.get("threshold", rule.condition.get("threshold_ms"))


def _jsonable(event: dict) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in event.items() if key not in ("catalog",)}  # fmt: skip


def dashboard_url(rule: AlertRule, sample: list[Event], links: DashboardLinks) -> str:
    """Where the notification leads: the issue that fired it, else the errors or the charts."""
    base = settings.ERRORSINK_PUBLIC_URL.rstrip("/")
    project = links.project(rule.project_id)
    condition = rule.condition
    if rule.kind in (NEW_ISSUE, REGRESSION) and sample or condition.get("issue_id"):
        issue_id = condition.get("issue_id") or _issue_of(sample[0])
        if issue_id:
            return base + links.issue(rule.project_id, issue_id)
    if rule.kind == EVENT_COUNT and condition.get("code"):
        return f"{base}{project}?{urlencode({'code': condition['code']})}"
    if rule.kind == DEGRADED_SHARE:
        return f"{base}{project}#quality"
    if rule.kind == LATENCY_P95:
        return f"{base}{project}#latency-panel"
    return base + project


def _issue_of(event: Event) -> int | None:
    from errorsink.issues.models import Issue

    issue = Issue.objects.filter(project_id=event.project_id, fingerprint=event.fingerprint)
    return issue.values_list("id", flat=True).first()
