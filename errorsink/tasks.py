"""Periodic and background tasks. Thin: each fetches its inputs and calls one service."""

from __future__ import annotations

import dataclasses

from celery import shared_task
from django.db import transaction

from errorsink.alerts import delivery as alert_delivery
from errorsink.alerts import evaluate as alerts
from errorsink.alerts.models import AlertDelivery
from errorsink.demo import demo_push
from errorsink.issues.backfill import issues_backfill as backfill
from errorsink.live import quality_updated_announce
from errorsink.projects.models import Project
from errorsink.projects.purge import projects_purge as purge
from errorsink.projects.retention import retention_prune
from errorsink.quality.rollups import rollups_update
from errorsink.sessions.search_index import search_index_tidy as search_tidy

PURGE_AGAIN_SECONDS = 20  # between purge runs of a deleted project too big for one


@shared_task
def events_prune() -> dict:
    """Delete what is past its retention, within one run's time budget; returns what went."""
    return dataclasses.asdict(retention_prune())


@shared_task
def projects_purge() -> dict:
    """Remove the rows of deleted projects, in batches (errorsink/projects/purge.py); a run
    whose budget ran out queues the next one a little later, leaving the worker between."""
    result = purge()
    if not result.finished:
        projects_purge.apply_async(countdown=PURGE_AGAIN_SECONDS)
    return dataclasses.asdict(result)


@shared_task
def rollups_compute() -> int | None:
    """Bring the quality rollups up to date and tell open dashboards whose figures moved;
    returns the id they now reach, if they moved."""
    result = rollups_update()
    quality_updated_announce(result.projects)
    return result.processed_through


@shared_task
def search_index_tidy() -> int:
    """Merge the message search index's pending entries before an insert has to
    (errorsink/sessions/search_index.py); returns the pages merged."""
    return search_tidy()


@shared_task
def issues_backfill() -> dict:
    """Group errors stored before issues existed, within one run's time budget."""
    return dataclasses.asdict(backfill())


@shared_task
def demo_load(*, project_id: str) -> int:
    """Push the demo day (errorsink/demo/) for one project; returns how many items."""
    return demo_push(project=Project.objects.get(id=project_id)).items


@shared_task
def alerts_evaluate() -> list[int]:
    """Evaluate the alert rules once (errorsink/alerts/evaluate.py) and start the deliveries
    of those fired; returns their ids."""
    evaluation = alerts.alerts_evaluate()
    deliveries_start(evaluation.deliveries)
    return evaluation.fired


def deliveries_start(delivery_ids: list[int]) -> None:
    """Queue one attempt of each delivery once the transaction that recorded it commits."""
    for delivery_id in delivery_ids:
        transaction.on_commit(lambda pk=delivery_id: alert_deliver.delay(pk))


@shared_task(acks_late=True)
def alert_deliver(delivery_id: int) -> str:
    """One attempt at one alert delivery; a failed one is tried again later, with back-off,
    as a new task (so a retry waits in the broker, not in a worker thread)."""
    status = alert_delivery.delivery_attempt(delivery_id)
    if status == alert_delivery.RETRYING:
        attempts = len(AlertDelivery.objects.get(id=delivery_id).attempts)
        alert_deliver.apply_async([delivery_id], countdown=alert_delivery.retry_delay(attempts))
    return status
