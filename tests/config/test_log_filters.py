"""The log stays readable with a task every 2 seconds: its routine lines go, its failures stay."""

from __future__ import annotations

import logging

import pytest

from config.log_filters import RoutineTasksFilter

pytestmark = pytest.mark.pure


def _record(level: int, message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("celery.app.trace", level, __file__, 1, message, args, None)


def test_routine_lines_of_the_rollups_task_are_dropped_and_nothing_else():
    keep = RoutineTasksFilter().filter
    name = "errorsink.tasks.rollups_compute"
    assert not keep(_record(logging.INFO, "Task %s[abc] succeeded in 0.01s: None", name))
    assert not keep(_record(logging.INFO, "Scheduler: Sending due task rollups-compute (x)"))
    assert keep(_record(logging.ERROR, "Task %s[abc] raised unexpected: boom", name))
    assert keep(_record(logging.INFO, "Task errorsink.tasks.events_prune[abc] succeeded"))
    assert keep(_record(logging.INFO, "beat: Starting..."))
