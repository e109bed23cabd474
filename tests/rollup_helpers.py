"""Bring the rollups up to date inside a test's own transaction, where the horizon of
``rollups_update`` can never pass (the test's transaction is still running)."""

from __future__ import annotations

from django.db.models import Max

from errorsink.quality.models import RollupState
from errorsink.quality.rollups import rollups_apply
from errorsink.sessions.models import Event


def roll_up() -> None:
    state, _ = RollupState.objects.get_or_create(id=1)
    through = Event.objects.aggregate(last=Max("id"))["last"] or 0
    if through > state.watermark:
        assert rollups_apply(after=state.watermark, through=through) is not None
