"""Beat schedules with a phase: every N seconds, at a fixed offset into each period.

Beat starts every interval entry at once, so tasks of the same period run on the same tick
forever. Three 2-second tasks (rollups, alert evaluations, search index tidying) starting
together held PostgreSQL and the worker's GIL for a few hundred ms every 2 s, and the queue
readers' batches in that window took over 40 ms three times as often as elsewhere
(docs/benchmarks.md). Each now starts at a phase of its own, aligned to the clock, so no
restart brings them back together.
"""

from __future__ import annotations

import math
from datetime import datetime

from celery.schedules import schedstate, schedule


class phased(schedule):  # noqa: N801 (named like Celery's schedule and crontab)
    """Every ``run_every`` seconds, at ``phase`` seconds past each multiple of it on the epoch
    clock (a run missed while beat was down is made once, at once, as Celery's schedule does)."""

    def __init__(self, run_every: float, phase: float, nowfun=None, app=None) -> None:
        super().__init__(run_every, nowfun=nowfun, app=app)
        if not 0 <= phase < self.seconds:
            raise ValueError(f"phase {phase} is not within the period of {self.seconds} s")
        self.phase = phase

    def next_after(self, moment: float) -> float:
        """The first phase point after ``moment`` (epoch seconds)."""
        periods = math.floor((moment - self.phase) / self.seconds) + 1
        return periods * self.seconds + self.phase

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.maybe_make_aware(self.now()).timestamp()
        due = self.next_after(self.maybe_make_aware(last_run_at).timestamp())
        if now >= due:
            return schedstate(is_due=True, next=self.next_after(now) - now)
        return schedstate(is_due=False, next=due - now)

    def __reduce__(self):
        return self.__class__, (self.run_every, self.phase, self.nowfun)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, phased):
            return (self.run_every, self.phase) == (other.run_every, other.phase)
        return False

    def __hash__(self) -> int:
        return hash((self.run_every, self.phase))

    def __repr__(self) -> str:
        return f"<phased: every {self.seconds:g} s at +{self.phase:g} s>"
