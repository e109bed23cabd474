"""Bring the rollups up to date inside a test's own transaction, where the horizon of
``rollups_update`` can never pass (the test's transaction is still running)."""

from __future__ import annotations

from django.db.models import Max
from django.utils import timezone

from errorsink.quality.models import RollupState
from errorsink.quality.rollups import rollups_apply
from errorsink.sessions.models import Event


def roll_up() -> None:
    state, _ = RollupState.objects.get_or_create(id=1)
    through = Event.objects.aggregate(last=Max("id"))["last"] or 0
    if through > state.watermark:
        assert rollups_apply(after=state.watermark, through=through) is not None


def kept_stretch_reads(window: str) -> int:
    """The reads a warm window adds for the days before today it keeps (the kept stretch and
    today's probe, errorsink/quality/figure_reads.py "Closed days"); none when the window
    starts today, as 24 hours does in the day's last hour (UTC)."""
    return 0 if window == "24h" and timezone.now().hour == 23 else 2
