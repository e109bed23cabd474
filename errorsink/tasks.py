"""Periodic and background tasks. Thin: each fetches its inputs and calls one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from errorsink.models import Event


@shared_task
def events_prune(*, days: int | None = None) -> int:
    """Delete events older than the retention period; returns how many went."""
    keep_days = days if days is not None else settings.ERRORSINK_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = Event.objects.filter(received_at__lt=cutoff).delete()
    return deleted
