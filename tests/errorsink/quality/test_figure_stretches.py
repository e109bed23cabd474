"""Kept window stretches (errorsink/quality/figure_reads.py, "Closed days"): a window merges its
days before today once, and the rollups and pruning renew them whenever such a day changes."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from django.utils import timezone

from errorsink.projects.retention import rollups_prune_batch
from errorsink.quality import figure_reads
from errorsink.quality.figure_reads import project_quality
from errorsink.quality.models import FigureStretch, FigureVersion
from tests.errorsink.quality.recount import assert_same_figures, recount
from tests.errorsink.quality.test_rollups import _settle, _store

pytestmark = pytest.mark.django_db(transaction=True)

DAY_MINUTES = 24 * 60


def _rows(minutes_ago: float, session_id: str, build_id: str = "b1") -> list[dict]:
    return [
        {"kind": "warning", "code": "31002", "minutes_ago": minutes_ago, "session_id": session_id,
         "build_id": build_id, "details": {"metrics": {"jitter_ms": 30 + minutes_ago % 7}}},
        {"kind": "error", "code": "45002", "minutes_ago": minutes_ago, "session_id": session_id,
         "build_id": build_id, "details": {}},
    ]  # fmt: skip


def _version(project) -> int:
    return FigureVersion.objects.filter(project=project).values_list("version", flat=True).first()


def _assert_recounted(project, now, window: str = "7d") -> None:
    actual = project_quality(project_id=project.id, window=window, now=now)
    assert_same_figures(actual, recount(project_id=project.id, window=window, build_id=None,
                                        now=now))  # fmt: skip


def test_a_late_event_on_a_past_day_renews_the_kept_stretch(project):
    now = timezone.now()
    _store(project, _rows(3 * DAY_MINUTES, "s1") + _rows(1, "s2"), now)
    _settle()
    _assert_recounted(project, now)
    assert FigureStretch.objects.filter(project=project).exists()
    before = _version(project)

    _store(project, _rows(2 * DAY_MINUTES, "s3"), now)  # arrives late, two days back
    _settle()
    assert _version(project) > before
    _assert_recounted(project, now)


def test_a_session_moved_to_its_later_build_renews_the_kept_stretch(project):
    now = timezone.now()
    _store(project, _rows(2 * DAY_MINUTES, "s1", build_id=""), now)
    _settle()
    _assert_recounted(project, now)
    # The session learns its build now: its events of two days ago move to b2.
    _store(project, [{"kind": "info", "code": "CALL_STARTED", "minutes_ago": 1,
                      "session_id": "s1", "build_id": "b2", "details": {}}], now)  # fmt: skip
    _settle()
    builds = project_quality(project_id=project.id, window="7d", now=now)["builds"]
    assert [(row["build_id"], row["sessions"], row["errors"]) for row in builds] == [("b2", 1, 1)]
    _assert_recounted(project, now)


def test_todays_events_are_read_beside_the_kept_stretch(project, django_assert_num_queries):
    now = timezone.now()
    if (now + timedelta(minutes=2)).date() != now.date():
        pytest.skip("in the day's last minute every chunk renews the stretches (by design)")
    _store(project, _rows(3 * DAY_MINUTES, "s1"), now)
    _settle()
    # Cold: the stretch's version and row, its five reads and its write; then today's probe
    # and today's five reads.
    with django_assert_num_queries(13):
        project_quality(project_id=project.id, window="30d", now=now)
    version = _version(project)

    _store(project, _rows(1, "s2") + _rows(2, "s3"), now)
    _settle()
    assert _version(project) == version  # today's events leave the days before alone
    # Warm: the stretch, today's probe and today's five reads, whatever the window's length.
    with django_assert_num_queries(7):
        figures = project_quality(project_id=project.id, window="30d", now=now)
    assert figures["sessions"]["active"] == 3 and figures["errors"][0]["count"] == 3
    _assert_recounted(project, now, window="30d")


def test_an_event_later_today_than_the_window_stays_out(project):
    """Today's day row stands in for today's hours only when nothing lies after the window."""
    now = timezone.now().replace(minute=30)
    if now.hour == 23:
        pytest.skip("no later hour today")
    later = now + timedelta(hours=1)
    _store(project, _rows(3 * DAY_MINUTES, "s1") + _rows(1, "s2"), now)
    _store(project, _rows(0, "s3"), later)  # an hour after the window's end, still today
    _settle()
    figures = project_quality(project_id=project.id, window="24h", now=now)
    assert figures["sessions"]["active"] == 1
    _assert_recounted(project, now, window="24h")


def test_pruning_a_kept_day_renews_the_stretch(project):
    now = timezone.now()
    _store(project, _rows(3 * DAY_MINUTES, "s1"), now)
    _settle()
    project_quality(project_id=project.id, window="7d", now=now)
    before = _version(project)
    later = now + timedelta(days=400)  # as if 13 months had passed
    deleted = rollups_prune_batch(table="errorsink_figure_codes", project_id=project.id,
                                  now=later, limit=1000)  # fmt: skip
    assert deleted and _version(project) > before


def test_a_process_reuses_the_stretch_it_holds_and_reads_one_it_does_not(project, monkeypatch):
    now = timezone.now()
    _store(project, _rows(3 * DAY_MINUTES, "s1") + _rows(1, "s2"), now)
    _settle()
    first = project_quality(project_id=project.id, window="7d", now=now)
    unpickled, loads = [], pickle.loads
    monkeypatch.setattr(figure_reads.pickle, "loads",
                        lambda blob: unpickled.append(blob) or loads(blob))  # fmt: skip
    assert project_quality(project_id=project.id, window="7d", now=now) == first
    assert unpickled == []  # held in this process: not fetched, not unpickled
    figure_reads._kept.clear()  # as another process, which only has the kept row
    assert project_quality(project_id=project.id, window="7d", now=now) == first
    assert len(unpickled) == 1


def test_a_reader_whose_clock_runs_ahead_keeps_nothing_of_the_databases_today(project):
    """A web process a day ahead of the database takes the database's today as closed: it
    must not keep it, since the rollups will not bump the version for it."""
    now = timezone.now()
    _store(project, _rows(1, "s1") + _rows(3 * DAY_MINUTES, "s2"), now)
    _settle()
    ahead = now + timedelta(days=1)
    _assert_recounted(project, ahead)
    assert not FigureStretch.objects.filter(project=project).exists()
    _assert_recounted(project, now)  # in step: kept
    assert FigureStretch.objects.filter(project=project).exists()
