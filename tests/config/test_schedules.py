"""Beat's phased schedules: each periodic task of a period at an offset of its own."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest
from django.conf import settings

from config.schedules import phased


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _every_2s_at(phase: float, now: float) -> phased:
    return phased(2.0, phase=phase, nowfun=lambda: _at(now))


def test_it_runs_at_its_phase_of_each_period():
    # Last run at 100.7 (phase 0.7 of 2 s): next due at 102.7, not 102.0 or at once.
    assert _every_2s_at(0.7, now=101.0).is_due(_at(100.7)) == (False, pytest.approx(1.7))
    assert _every_2s_at(0.7, now=102.7).is_due(_at(100.7)) == (True, pytest.approx(2.0))


def test_a_late_run_comes_back_to_its_phase():
    # Beat ran it late (at 103.1); the next run is at the phase point after, 104.7, not 105.1.
    assert _every_2s_at(0.7, now=103.1).is_due(_at(100.7)) == (True, pytest.approx(1.6))
    assert _every_2s_at(0.7, now=104.0).is_due(_at(103.1)) == (False, pytest.approx(0.7))


def test_a_run_missed_while_beat_was_down_is_made_once_at_once():
    assert _every_2s_at(1.3, now=500.0).is_due(_at(101.3)) == (True, pytest.approx(1.3))


def test_the_two_second_tasks_never_share_a_tick():
    names = ("rollups-compute", "alerts-evaluate", "search-index-tidy")
    schedules = [settings.CELERY_BEAT_SCHEDULE[name]["schedule"] for name in names]
    assert {s.seconds for s in schedules} == {2.0}
    phases = sorted(s.phase for s in schedules)
    gaps = [b - a for a, b in zip(phases, [*phases[1:], phases[0] + 2.0], strict=True)]
    assert min(gaps) >= 0.5


def test_it_survives_beats_schedule_file():
    schedule = phased(2.0, phase=1.3)
    assert pickle.loads(pickle.dumps(schedule)) == schedule != phased(2.0, phase=0.7)


def test_it_refuses_a_phase_outside_the_period():
    with pytest.raises(ValueError, match="not within the period"):
        phased(2.0, phase=2.0)
