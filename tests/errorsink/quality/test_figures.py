"""The merged figures (errorsink/quality/figures.py) against a recount of the raw events: every
count and sum equal, every distinct session count exact (below the sketch's 4,096), every p95
within the DDSketch's 1 %; the same after computing twice and after catching up from nothing,
and for windows merged from many buckets."""

from __future__ import annotations

import importlib
import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from ddsketch.pb.proto import DDSketchProto
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errorsink.quality.figure_reads import window_pieces
from errorsink.quality.models import DAY, HOUR, MINUTE, FigureCodes, FigureMetrics, FigureSessions
from errorsink.quality.sketches import (
    RELATIVE_ACCURACY,
    Bins,
    blob_percentile,
    sessions_count,
    sessions_sketch,
    sessions_union,
    values_dump,
    values_load,
    values_merge,
    values_percentile,
    values_sketch,
)
from errorsink.sessions.models import Event
from tests.errorsink.quality.recount import (
    _degraded,
    _metric_values,
    events_as_counted,
    sip_code_of,
)
from tests.errorsink.quality.test_rollups import (
    _clear,
    _reset_rollups,
    _settle,
    _store,
    events_strategy,
)

pytestmark = pytest.mark.django_db(transaction=True)
FIGURES = (FigureSessions, FigureCodes, FigureMetrics)


def _buckets(event: Event, now: datetime) -> list[tuple[str, datetime]]:
    at = event.occurred_at.astimezone(UTC)
    hour = at.replace(minute=0, second=0, microsecond=0)
    spans = [(HOUR, hour), (DAY, hour.replace(hour=0))]
    if at >= now - timedelta(hours=3):
        spans.append((MINUTE, at.replace(second=0, microsecond=0)))
    return spans


def _expected(project, now) -> tuple[dict, dict, dict]:
    sessions, codes, metrics = defaultdict(Counter), defaultdict(Counter), defaultdict(list)
    session_sets, code_sets = defaultdict(set), defaultdict(set)
    for event in events_as_counted(project.id):
        for span, bucket in _buckets(event, now):
            key = (span, bucket, event.build_id)
            sessions[key].update({"events": 1, "errors": event.kind == "error",
                                  "warnings": event.kind == "warning"})  # fmt: skip
            if event.session_id:
                session_sets[(*key, "active")].add(event.session_id)
                if _degraded(event):
                    session_sets[(*key, "degraded")].add(event.session_id)
            if event.kind in ("error", "warning", "termination"):
                code = (span, bucket, event.kind, event.code, sip_code_of(event) or 0,
                        event.build_id)  # fmt: skip
                codes[code]["count"] += 1
                if event.session_id:
                    code_sets[code].add(event.session_id)
            if event.kind == "warning":
                for metric, values in _metric_values([event]).items():
                    metrics[(span, bucket, event.code, event.build_id, metric)] += values
    return ({k: (dict(v), session_sets[(*k, "active")], session_sets[(*k, "degraded")])
             for k, v in sessions.items()},
            {k: (v["count"], code_sets[k]) for k, v in codes.items()}, metrics)  # fmt: skip


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def _assert_figures_match(project, now) -> None:
    sessions, codes, metrics = _expected(project, now)
    stored = {
        (r.span, r.bucket, r.build_id): r for r in FigureSessions.objects.filter(project=project)
    }
    assert set(stored) == set(sessions)
    for key, (counts, active, degraded) in sessions.items():
        row = stored[key]
        assert (row.events, row.errors, row.warnings) == (
            counts["events"],
            counts.get("errors", 0),
            counts.get("warnings", 0),
        ), key
        assert sessions_count(row.active) == (len(active), True), key
        assert sessions_count(row.degraded) == (len(degraded), True), key
        assert (row.active_count, row.degraded_count) == (len(active), len(degraded)), key
    stored = {(r.span, r.bucket, r.kind, r.code, r.sip_code, r.build_id): r
              for r in FigureCodes.objects.filter(project=project)}  # fmt: skip
    assert set(stored) == set(codes)
    for key, (count, ids) in codes.items():
        row = stored[key]
        assert row.count == count and sessions_count(row.sessions) == (len(ids), True), key
        assert row.session_count == len(ids), key
    stored = {(r.span, r.bucket, r.code, r.build_id, r.metric): r
              for r in FigureMetrics.objects.filter(project=project)}  # fmt: skip
    assert set(stored) == set(metrics)
    for key, values in metrics.items():
        row = stored[key]
        assert row.count == len(values) and row.total == pytest.approx(sum(values))
        _assert_close(values_percentile(values_load(row.sketch), 0.95), _p95(values))


def _assert_close(estimate: float, exact: float) -> None:
    # DDSketch returns a value within 1 % of the value at the rank it was asked for.
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-9, (estimate, exact)


@settings(max_examples=10, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(events_strategy(), min_size=1, max_size=3))
def test_every_figure_matches_a_recount(project, batches):
    _clear()
    now = timezone.now()
    for rows in batches:
        _store(project, rows, now)
        _settle()
    _assert_figures_match(project, now)
    before = {model: sorted(map(_row_values, model.objects.all())) for model in FIGURES}
    _settle()  # computing again changes nothing
    assert {model: sorted(map(_row_values, model.objects.all())) for model in FIGURES} == before
    _reset_rollups()  # as if the worker had been down for all of it
    _settle()
    _assert_figures_match(project, now)


def _row_values(row) -> tuple:
    values = []
    for field in row._meta.concrete_fields:
        value = getattr(row, field.attname)
        values.append(bytes(value) if isinstance(value, memoryview) else str(value))
    return tuple(values)


def test_windows_merge_many_buckets_within_the_bounds():
    """30 days of hour sketches, united: exact below 4,096 sessions, within 3 % (two standard
    errors) above; a month of DDSketches merged: p95 within 1 % of the exact one."""
    rng = random.Random(7)
    ids_by_hour = [[f"s{rng.randrange(200_000)}" for _ in range(1500)] for _ in range(720)]
    big = [sessions_sketch(ids) for ids in ids_by_hour]
    truth = len({session for ids in ids_by_hour for session in ids})
    estimate, exact = sessions_count(sessions_union(big))
    assert not exact and abs(estimate - truth) <= 0.03 * truth
    few = [[f"f{rng.randrange(1000)}" for _ in range(5)] for _ in range(720)]
    estimate, exact = sessions_count(sessions_union(sessions_sketch(ids) for ids in few))
    assert exact and estimate == len({session for ids in few for session in ids})
    hours = [[rng.lognormvariate(3, 1) for _ in range(200)] for _ in range(720)]
    merged = values_merge(values_dump(values_sketch(values)) for values in hours)
    _assert_close(blob_percentile(merged, 0.95), _p95([v for vs in hours for v in vs]))


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.lists(st.one_of(st.just(0.0), st.floats(0.001, 600_000)), max_size=40),
                      min_size=1, max_size=6),
       fraction=st.sampled_from([0.0, 0.5, 0.95, 1.0]))  # fmt: skip
def test_a_merged_sketch_reads_as_the_library_reads_it(parts, fraction):
    """The percentile read from merged bins is the library's own on the same sketch: both the
    merge and the read skip its sketch objects."""
    merged = values_merge(values_dump(values_sketch(values)) for values in parts)
    expected = values_percentile(values_sketch(v for values in parts for v in values), fraction)
    actual = blob_percentile(merged, fraction)
    assert actual == expected if expected is None else actual == pytest.approx(expected, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.just(0.0), st.floats(0.001, 600_000)), max_size=20),
       fraction=st.sampled_from([0.0, 0.5, 0.95, 1.0]))  # fmt: skip
def test_a_stored_sketch_is_its_filled_bins_and_reads_as_the_library(values, fraction):
    """The library pads its bins to chunks of 128; a stored sketch holds its first to its last
    filled bin only (a header and 8 bytes a bin), and loads back to a sketch that reads as the
    library's own."""
    sketch = values_sketch(values)
    stored = Bins.load(values_dump(sketch))
    positive = [value for value in values if value > 0]
    if positive:
        assert stored.counts[0] and stored.counts[-1]
        assert len(values_dump(sketch)) == 13 + 8 * stored.counts.size
    assert stored.counts.sum() == len(positive) and stored.zeros == len(values) - len(positive)
    expected = values_percentile(sketch, fraction)
    loaded = values_percentile(values_load(values_dump(sketch)), fraction)
    assert loaded == expected if expected is None else loaded == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("start,end,expected", [
    ("2026-12-06T10:00", "2026-12-06T11:00", [("h", "2026-12-06T10:00", "2026-12-06T11:00")]),
    ("2026-11-06T11:00", "2026-12-06T11:00", [("h", "2026-11-06T11:00", "2026-11-07T00:00"),
                                              ("d", "2026-11-07T00:00", "2026-12-06T00:00"),
                                              ("h", "2026-12-06T00:00", "2026-12-06T11:00")]),
    ("2026-11-06T00:00", "2026-12-06T00:00", [("d", "2026-11-06T00:00", "2026-12-06T00:00")]),
    # No whole day inside: hours only.
    ("2026-12-05T11:00", "2026-12-06T11:00", [("h", "2026-12-05T11:00", "2026-12-06T11:00")]),
])  # fmt: skip
def test_an_hour_window_reads_whole_days_from_day_rows(start, end, expected):
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    pieces = window_pieces(at(start), at(end), HOUR)
    assert [(p.span, p.start, p.end) for p in pieces] == [(s, at(a), at(b)) for s, a, b in expected]


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.one_of(st.just(0.0), st.floats(0.001, 600_000)), max_size=30))
def test_the_migration_stores_a_protobuf_sketch_as_its_bins(values):
    """Migration 0027 rewrote the sketches stored as the library's protobuf: the same bytes as
    the sketch stored now."""
    migration = importlib.import_module("errorsink.migrations.0027_metric_sketch_bins")
    sketch = values_sketch(values)
    protobuf = DDSketchProto.to_proto(sketch).SerializeToString()
    assert migration.bins_of_protobuf(protobuf) == values_dump(sketch)
