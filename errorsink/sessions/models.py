"""Sessions and their events: what ingest stores and every page reads."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import F
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from errorsink.projects.models import Project


class Session(models.Model):
    """One orchestrator session of a project, upserted by the ingest worker batch by batch."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=200)
    build_id = models.CharField(max_length=200, blank=True, default="")
    customer_context = models.JSONField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    error_count = models.IntegerField(default=0)
    warning_count = models.IntegerField(default=0)
    event_count = models.IntegerField(default=0)
    end_cause = models.CharField(max_length=128, blank=True, default="")
    # Set by the rollups from the session's warnings and errors (errorsink/quality/tags.py).
    quality_tags = ArrayField(models.CharField(max_length=32), default=list, db_default=[])
    # Set by the rollups: a network-quality, data-flow or connectivity warning, as the quality
    # figures count a degraded session (errorsink/quality/rollups.py DEGRADED_CODE_PATTERN).
    degraded = models.BooleanField(default=False, db_default=False)
    # Set by the rollups: the build under which the quality figures have counted this session's
    # events so far; null before the first ("" is the empty build). When build_id moves on, the
    # rollups move the session's counted events to it (errorsink/quality/rollups.py).
    figures_build = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        db_table = "errorsink_session"
        constraints = [
            models.UniqueConstraint(fields=["project", "session_id"], name="session_unique")
        ]
        # Ingest updates a session's counters and last_seen every batch in place (HOT, see
        # migration 0004): no index may hold those columns. The list goes newest first by
        # when a session started, which an update almost never moves.
        indexes = [
            models.Index(fields=["project", "-first_seen", "-id"], name="session_started"),
            # Session-id prefixes in byte order, whatever the database's collation.
            models.Index(
                F("project"),
                OpClass("session_id", name="varchar_pattern_ops"),
                name="session_id_prefix",
            ),
        ]


class OriginalJSONField(models.JSONField):
    """The item exactly as it came, in PostgreSQL's `json` type: the text is kept verbatim
    (key order, spacing) and only validated, which is cheaper to ingest than `jsonb`."""

    def db_type(self, connection) -> str:
        return "json"

    def from_db_value(self, value, expression, connection):
        # psycopg parses `json` itself (Django only registers a text loader for `jsonb`).
        if value is None or not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)


def voice_to_voice() -> Cast:
    """A turn's voice-to-voice in ms, as the slowest-turns index orders it."""
    return Cast(KT("details__metrics__voice_to_voice_ms"), models.FloatField())


class Event(models.Model):
    """An error, quality warning, call-termination cause or informational event."""

    ERROR = "error"
    WARNING = "warning"
    TERMINATION = "termination"
    INFO = "info"
    TURN = "turn"  # a voice turn or one of its stages (errorsink/ingest/formats/turns.py)
    KINDS = [(ERROR, "Error"), (WARNING, "Warning"), (TERMINATION, "Termination"), (INFO, "Info"),
             (TURN, "Turn")]  # fmt: skip

    id = models.BigAutoField(primary_key=True)
    # No index of its own: every index below starts with the project already. The lone one
    # cost every COPY a write, and while a new project's rows were not yet in the statistics
    # the planner took it for "the last 20 errors" and sorted them all (24 ms at 60,000 rows,
    # growing) instead of reading 20 entries of event_latest_errors.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    event_id = models.CharField(max_length=200)
    session_id = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=12, choices=KINDS)
    code = models.CharField(max_length=128)
    name = models.CharField(max_length=128, blank=True, default="")
    message = models.TextField(blank=True, default="")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    source = models.CharField(max_length=32)
    severity = models.CharField(max_length=16)
    recoverable = models.BooleanField(null=True)
    build_id = models.CharField(max_length=200, blank=True, default="")
    stack = models.TextField(blank=True, default="")
    customer_context = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    item_type = models.CharField(max_length=32)
    raw = OriginalJSONField()
    # An error's issue is the project's issue with this fingerprint (errorsink/issues/grouping.py).
    fingerprint = models.UUIDField(null=True, blank=True)

    class Meta:
        db_table = "errorsink_event"
        # Partitioned by day of occurred_at (migration 0028, errorsink/sessions/partitions.py):
        # the primary key in the database is (id, occurred_at), ids stay unique by their
        # sequence, and every index below is one per partition. The idempotency key, which
        # PostgreSQL could only enforce within a partition here, is kept in the event key
        # table instead (errorsink/sessions/event_keys.py).
        # Partial indexes: each kind pays only for the index its own queries use, which keeps
        # batch inserts fast (ingest writes every row through every index).
        indexes = [
            # "The last 20 errors of a project", newest first in arrival order.
            models.Index(
                fields=["project", "-received_at", "-id"],
                condition=models.Q(kind="error"),
                name="event_latest_errors",
            ),
            # "Every event of one session in time order".
            models.Index(fields=["project", "session_id", "occurred_at"], name="event_timeline"),
            # "The events of one issue", newest first in arrival (id) order. Narrow: every error
            # goes into it at a random place, which costs ingest more than an appended entry.
            models.Index(
                fields=["fingerprint", "-id"],
                condition=models.Q(kind="error"),
                name="event_issue_newest",
            ),
            # Errors stored before issues existed, for the backfill (errorsink/issues/backfill.py):
            # empty once it is done, and ingest never writes a row into it.
            models.Index(
                fields=["id"],
                condition=models.Q(kind="error", fingerprint__isnull=True),
                name="event_fingerprint_missing",
            ),
            # A turn's stages that came without a session (docs/turns.md), found by their
            # trace when the turn is read. Only turn rows without a session enter it.
            models.Index(
                "project",
                KT("details__turn__trace_id"),
                condition=models.Q(kind="turn", session_id=""),
                name="event_turn_stages",
            ),
            # "The slowest turns of a window" (errorsink/turns/figures.py): per partition in
            # voice-to-voice order, so a window reads ten entries per day, not every turn.
            models.Index(
                "project",
                voice_to_voice().desc(),
                condition=models.Q(
                    kind="turn", code="turn", details__metrics__has_key="voice_to_voice_ms"
                ),
                name="event_turn_slowest",
            ),
            # Words in an error's message (errorsink/search.py): PostgreSQL's own text search,
            # since the embedded PostgreSQL has no pg_trgm.
            GinIndex(
                SearchVector("message", config="simple"),
                condition=models.Q(kind="error"),
                name="event_message_search",
            ),
        ]

    @property
    def termination(self) -> dict:
        return self.details.get("termination", {}) if isinstance(self.details, dict) else {}
