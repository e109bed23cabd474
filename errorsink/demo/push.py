"""Pushing the demo day onto the ingest queue, and the project it fills."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from errorsink.demo.calls import demo_items
from errorsink.demo.day import (
    BUILDS,
    DEFAULT_HOURS,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DEMO_PROJECT_NAME,
    PUSH_CHUNK,
    REGRESSION,
)
from errorsink.ingest.accept import queue_item
from errorsink.ingest.queue import enqueue, heartbeat_key, redis_client
from errorsink.projects.models import Membership, Project
from errorsink.projects.services import project_add_member, project_create
from errorsink.projects.session_settings import session_settings_get


@dataclass(frozen=True)
class DemoSummary:
    project_id: str
    seed: int
    sessions: int
    hours: int
    items: int
    item_types: dict[str, int]
    builds: tuple[str, ...] = tuple(build.build_id for build in BUILDS)
    regression: str = REGRESSION
    already_stored: int = 0
    workers_alive: int = 0


# ---------------------------------------------------------------------------------------------
# Pushing


def demo_push(
    *,
    project: Project,
    hours: int = DEFAULT_HOURS,
    sessions: int = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Build the demo day for ``project`` with its own crash message and idle timeout and LPUSH
    it onto the ingest queue in chunks; ``progress(pushed, total)`` after each chunk."""
    settings = session_settings_get(project=project)
    items = demo_items(
        project_id=str(project.id),
        hours=hours,
        sessions=sessions,
        seed=seed,
        crash_message=settings.error_message,
        idle_timeout_seconds=settings.idle_timeout_seconds,
    )
    already = project.events.filter(event_id__startswith=f"demo-{seed}-").count()
    for offset in range(0, len(items), PUSH_CHUNK):
        chunk = items[offset : offset + PUSH_CHUNK]
        enqueue([queue_item(item, str(project.id)).payload for item in chunk])
        if progress is not None:
            progress(min(offset + PUSH_CHUNK, len(items)), len(items))
    return DemoSummary(
        project_id=str(project.id),
        seed=seed,
        sessions=sessions,
        hours=hours,
        items=len(items),
        item_types=dict(Counter(_item_type(item) for item in items).most_common()),
        already_stored=already,
        workers_alive=_workers_alive(),
    )


def _item_type(item: dict) -> str:
    return item["name"] if item["type"] == "sdk_event" else item["type"]


def _workers_alive() -> int:
    """Ingest workers whose heartbeat is current: without one, the items wait in the queue."""
    return sum(1 for _ in redis_client().scan_iter(match=heartbeat_key("*"), count=100))


class DemoProjectUnclear(Exception):
    """No project was named and none can be chosen or created; the message says what to do."""


@transaction.atomic
def demo_project_pick(*, project_id: str | None = None) -> tuple[Project, bool]:
    """The project ``manage.py demo`` fills, and whether it was created: the one named; else the
    only project there is (the one ``make run`` creates); else the project named "Demo project",
    created if need be with every active superuser as its owner."""
    if project_id is not None:
        try:
            return Project.objects.get(id=project_id), False
        except (Project.DoesNotExist, ValidationError, ValueError):
            raise DemoProjectUnclear(f"no project with id {project_id!r}") from None
    projects = list(Project.objects.order_by("created_at")[:2])
    if len(projects) == 1:
        return projects[0], False
    existing = Project.objects.filter(name=DEMO_PROJECT_NAME).order_by("created_at").first()
    if existing is not None:
        return existing, False
    owners = list(get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("id"))
    if not owners:
        raise DemoProjectUnclear(
            "pass --project ID, or create a superuser first (manage.py createsuperuser) "
            f"to own a new {DEMO_PROJECT_NAME!r}"
        )
    project = project_create(name=DEMO_PROJECT_NAME, owner=owners[0])
    for user in owners[1:]:
        project_add_member(project=project, user=user, role=Membership.OWNER)
    return project, True
