"""Alerts (docs/alerts.md): a project's rules, the counters and signals ingest leaves for them,
and every firing and delivery attempt, kept to be shown on the rule.

Ingest never evaluates a rule: in the batch's own transaction it adds its stored errors to the
per-second counters of the project's event-count rules and leaves a signal for each issue it
created or reopened (errorsink/ingest/alert_feed.py). The evaluator
(errorsink/alerts/evaluate.py) reads those every two seconds, so a rule costs neither a scan of
the event table nor ingest latency.
"""

from __future__ import annotations

from django.db import models

EVENT_COUNT = "event_count"
NEW_ISSUE = "new_issue"
REGRESSION = "regression"
DEGRADED_SHARE = "degraded_share"
LATENCY_P95 = "latency_p95"
RULE_TYPES = (EVENT_COUNT, NEW_ISSUE, REGRESSION, DEGRADED_SHARE, LATENCY_P95)
COOLDOWN_DEFAULT_SECONDS = 600


class AlertRule(models.Model):
    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=[(t, t) for t in RULE_TYPES])
    # The condition and channels as the API takes them (errorsink/alerts/rules.py validates).
    condition = models.JSONField()
    channels = models.JSONField()
    cooldown_seconds = models.IntegerField(default=COOLDOWN_DEFAULT_SECONDS)
    muted = models.BooleanField(default=False)
    # An event-count rule on one issue matches that issue's errors by fingerprint, which is what
    # an ingest row carries; kept here so ingest needs no join.
    issue_fingerprint = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    # What the last evaluation saw: whether the condition held, and its value.
    holding = models.BooleanField(default=False)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "errorsink_alert_rule"
        indexes = [models.Index(fields=["project", "kind"], name="alert_rule_project")]


class AlertCount(models.Model):
    """Errors matching an event-count rule, per second of arrival: the window's count is a sum
    of at most window-seconds rows, however many events there were."""

    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, db_index=False)
    second = models.BigIntegerField()  # Unix time of arrival, whole seconds
    count = models.IntegerField()

    class Meta:
        db_table = "errorsink_alert_count"
        constraints = [
            models.UniqueConstraint(fields=["rule", "second"], name="alert_count_rule_second")
        ]


class AlertSignal(models.Model):
    """An issue ingest created or reopened, waiting for the evaluator (which deletes it)."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey("errorsink.Project", on_delete=models.CASCADE, db_index=False)
    issue = models.ForeignKey("errorsink.Issue", on_delete=models.CASCADE, db_index=False)
    kind = models.CharField(max_length=20)  # new_issue or regression
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "errorsink_alert_signal"


class AlertFiring(models.Model):
    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    fired_at = models.DateTimeField()
    value = models.FloatField()
    threshold = models.FloatField(null=True, blank=True)
    url = models.URLField(max_length=500)
    body = models.JSONField()  # the webhook body, as every channel was sent it
    test = models.BooleanField(default=False)  # sent from "Send a test", not by the condition

    class Meta:
        db_table = "errorsink_alert_firing"
        indexes = [models.Index(fields=["rule", "-fired_at"], name="alert_firing_rule")]


PENDING = "pending"
DELIVERED = "delivered"
RETRYING = "retrying"
FAILED = "failed"


class AlertDelivery(models.Model):
    """One channel of one firing, with every attempt made to reach it."""

    id = models.BigAutoField(primary_key=True)
    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.JSONField()
    status = models.CharField(max_length=12, default=PENDING)
    # [{"at": ISO time, "ok": bool, "status": HTTP status or null, "error": text, "ms": int}]
    attempts = models.JSONField(default=list)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "errorsink_alert_delivery"
