"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class RoutineTasksFilter(logging.Filter):
    """Drops the informational lines about tasks beat sends every few seconds or every minute
    (the quality rollups, the issues backfill): sent, received, succeeded. Their warnings and
    errors, and the lines the work itself logs, still get through."""

    ROUTINE = ("rollups_compute", "rollups-compute", "issues_backfill", "issues-backfill")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.ROUTINE)
