"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class RoutineTasksFilter(logging.Filter):
    """Drops the informational lines about tasks beat sends every few seconds (the quality
    rollups): sent, received, succeeded. Their warnings and errors still get through."""

    ROUTINE = ("rollups_compute", "rollups-compute")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.ROUTINE)
