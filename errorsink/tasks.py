"""Periodic and background tasks. Thin: each fetches its inputs and calls one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from errorsink.demo import demo_push
from errorsink.live import quality_updated_announce
from errorsink.models import Event, Project, Session
from errorsink.rollups import rollups_update


@shared_task
def events_prune(*, days: int | None = None) -> int:
    """Delete events older than the retention period; returns how many went."""
    keep_days = days if days is not None else settings.ERRORSINK_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = Event.objects.filter(received_at__lt=cutoff).delete()
    # A session with nothing left to show would lead "find a session" to an empty timeline.
    remaining = Event.objects.filter(
        project_id=OuterRef("project_id"), session_id=OuterRef("session_id")
    )
    Session.objects.filter(last_seen__lt=cutoff).filter(~Exists(remaining)).delete()
    return deleted


@shared_task
def rollups_compute() -> int | None:
    """Bring the quality rollups up to date and tell open dashboards whose figures moved;
    returns the id they now reach, if they moved."""
    result = rollups_update()
    quality_updated_announce(result.projects)
    return result.processed_through


@shared_task
def demo_load(*, project_id: str) -> int:
    """Push the demo day (errorsink/demo.py) for one project; returns how many items."""
    return demo_push(project=Project.objects.get(id=project_id)).items
