"""The quality rollup tables (docs/quality.md): the figures windows merge and the computation's
watermark, written only by ``errorsink.quality.rollups``.

Each figure table holds day (``span = "d"``) and hour (``"h"``) rows, and minute rows (``"m"``)
for the recent past only, so the last hour can be shown per minute.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

HOUR = "h"
MINUTE = "m"
DAY = "d"
FIGURE_SPANS = [(MINUTE, "minute"), (HOUR, "hour"), (DAY, "day")]
# Minute rows are written for events that happened within this long before the run, and pruned
# once older: the last-hour view and its previous hour need them; a margin covers clock skew.
MINUTE_ROWS_KEPT = "3 hours"


class RollupState(models.Model):
    """The one row saying how far the rollups got: every event id up to ``watermark`` is
    counted; ``pending_*`` is a reading of the id sequence waiting for its horizon."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    watermark = models.BigIntegerField(default=0)
    pending_through = models.BigIntegerField(null=True)
    pending_vxids = ArrayField(models.TextField(), default=list)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "errorsink_rollup_state"


# ---------------------------------------------------------------------------------------------
# Figures that windows merge (errorsink/quality/figures.py): one row per bucket and build (and
# code, and metric), whatever the number of sessions. Distinct sessions are theta sketches
# (Apache DataSketches, exact below 4,096 sessions), metric values DDSketches (1 % relative
# accuracy); counts and sums are exact. Minute rows for the last hours, hour and day rows kept.


class FigureSessions(models.Model):
    """Events of one bucket and build, and its sessions: active (any event) and degraded."""

    pk = models.CompositePrimaryKey("project", "span", "bucket", "build_id")
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    span = models.CharField(max_length=1, choices=FIGURE_SPANS)
    bucket = models.DateTimeField()
    build_id = models.CharField(max_length=200)
    events = models.BigIntegerField()
    errors = models.BigIntegerField()
    warnings = models.BigIntegerField()
    active = models.BinaryField()  # theta sketch of the session ids with an event
    degraded = models.BinaryField()  # theta sketch of those with a degrading warning
    # What each sketch counts, so that a series of buckets is read without any sketch.
    active_count = models.IntegerField(default=0)
    degraded_count = models.IntegerField(default=0)

    class Meta:
        db_table = "errorsink_figure_sessions"


class FigureCodes(models.Model):
    """Events of one kind and code (a termination: cause and SIP code) in one bucket and build,
    and the sessions they came from."""

    pk = models.CompositePrimaryKey(
        "project", "span", "bucket", "kind", "code", "sip_code", "build_id"
    )
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    span = models.CharField(max_length=1, choices=FIGURE_SPANS)
    bucket = models.DateTimeField()
    kind = models.CharField(max_length=12)
    code = models.CharField(max_length=128)
    sip_code = models.IntegerField()
    build_id = models.CharField(max_length=200)
    count = models.BigIntegerField()
    sessions = models.BinaryField()  # theta sketch
    session_count = models.IntegerField(default=0)  # what the sketch counts

    class Meta:
        db_table = "errorsink_figure_codes"


class FigureMetrics(models.Model):
    """The valid values of one metric of one warning code in one bucket and build: their count
    and sum (exact) and their distribution (a DDSketch, for percentiles)."""

    pk = models.CompositePrimaryKey("project", "span", "bucket", "code", "build_id", "metric")
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    span = models.CharField(max_length=1, choices=FIGURE_SPANS)
    bucket = models.DateTimeField()
    code = models.CharField(max_length=128)
    build_id = models.CharField(max_length=200)
    metric = models.CharField(max_length=32)
    count = models.BigIntegerField()
    total = models.FloatField()
    # The extremes, exact: a percentile is never reported outside them, so one value, or many
    # equal ones, give back exactly that value rather than its bin's.
    minimum = models.FloatField(default=0.0)
    maximum = models.FloatField(default=0.0)
    sketch = models.BinaryField()  # DDSketch bins (errorsink/quality/sketches.py, Bins)

    class Meta:
        db_table = "errorsink_figure_metrics"


# ---------------------------------------------------------------------------------------------
# Merged stretches of windows (errorsink/quality/figure_reads.py, "Closed days"): what a window
# merged from the rows before today (UTC), kept until the rollups change such a row.


class FigureVersion(models.Model):
    """Bumped whenever the rollups change a figure row of a project before today (UTC): a
    merged stretch kept under another version is stale."""

    project = models.OneToOneField(
        "errorsink.Project", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    version = models.BigIntegerField()

    class Meta:
        db_table = "errorsink_figure_version"


class FigureStretch(models.Model):
    """One window stretch's merged figures (pickled), under the version it was merged at."""

    pk = models.CompositePrimaryKey("project", "key")
    project = models.ForeignKey(
        "errorsink.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.TextField()  # span, bounds and build filter
    version = models.BigIntegerField()
    merged = models.BinaryField()
    made_at = models.DateTimeField()

    class Meta:
        db_table = "errorsink_figure_stretch"
