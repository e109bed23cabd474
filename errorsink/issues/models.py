"""Issues (docs/issues.md): a project's errors grouped by fingerprint, with counters that the
ingest batch keeps in the same transaction as the events it stores (errorsink/ingest/issues.py).

An error row names its issue by (project, fingerprint) rather than by id, so the events can be
written before the issue counters, from the rows really inserted, in one pass.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models.functions import Upper

UNRESOLVED = "unresolved"
RESOLVED = "resolved"
IGNORED = "ignored"
STATUSES = (UNRESOLVED, RESOLVED, IGNORED)
TITLE_MAX = 200


class Issue(models.Model):
    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="issues", db_index=False
    )
    fingerprint = models.UUIDField()
    # The fingerprint in words ("code: X", "message: timeout after <num> s"), shown on the
    # issue page to say why its events were grouped.
    fingerprint_parts = models.JSONField(default=list)
    title = models.CharField(max_length=TITLE_MAX)
    code = models.CharField(max_length=128)
    status = models.CharField(max_length=12, choices=[(s, s) for s in STATUSES], default=UNRESOLVED)
    # A new event came after it was resolved; cleared when someone sets the status again.
    regressed = models.BooleanField(default=False)
    # When ingest last reopened it: how the batch tells that its upsert was the one that did.
    regressed_at = models.DateTimeField(null=True, blank=True)
    event_count = models.BigIntegerField(default=0)
    session_count = models.IntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    builds = ArrayField(models.CharField(max_length=200), default=list)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "errorsink_issue"
        constraints = [
            models.UniqueConstraint(fields=["project", "fingerprint"], name="issue_fingerprint"),
            models.CheckConstraint(
                condition=models.Q(status__in=STATUSES), name="issue_status_known"
            ),
        ]
        indexes = [
            # The triage list: a status, newest activity first (and by count or sessions).
            models.Index(fields=["project", "status", "-last_seen", "-id"], name="issue_recent"),
            models.Index(fields=["project", "status", "-event_count", "-id"], name="issue_count"),
            models.Index(
                fields=["project", "status", "-session_count", "-id"], name="issue_sessions"
            ),
            # Code prefix, case-insensitive: upper(code) LIKE 'PREFIX%' in byte order.
            models.Index(
                "project",
                OpClass(Upper("code"), name="text_pattern_ops"),
                name="issue_code_prefix",
            ),
            GinIndex(SearchVector("title", config="simple"), name="issue_title_search"),
        ]

    def __str__(self) -> str:
        return self.title


class IssueHour(models.Model):
    """How many events an issue had in one hour: its trend."""

    pk = models.CompositePrimaryKey("issue", "hour")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    count = models.IntegerField()

    class Meta:
        db_table = "errorsink_issue_hour"


class IssueSession(models.Model):
    """That a session had an issue's error: distinct sessions are counted as these rows are
    first inserted, so a session seen again adds nothing."""

    pk = models.CompositePrimaryKey("issue", "session_id")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+", db_index=False)
    session_id = models.CharField(max_length=200)

    class Meta:
        db_table = "errorsink_issue_session"
