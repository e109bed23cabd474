"""Deleting a project: gone for everyone at once (members, keys, rules, ingest), its rows
removed afterwards in batches, and nothing of any other project touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from errorsink import tasks
from errorsink.alerts.models import AlertRule, AlertSignal
from errorsink.alerts.rules import RuleIn, rule_create
from errorsink.ingest.batch import batch_rows
from errorsink.ingest.persist import batch_persist
from errorsink.issues.models import Issue, IssueHour, IssueSession
from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey, Invitation, Membership, Project
from errorsink.projects.purge import PurgeResult, project_delete, projects_purge
from errorsink.projects.services import project_create, projects_for_user
from errorsink.projects.team import TeamChangeRefused, invitation_create
from errorsink.quality.models import FigureCodes, FigureSessions
from errorsink.sentry.keys import SentryKey, sentry_key_for
from errorsink.sessions.models import Event, Session
from errorsink.sessions.partitions import day_start, partition_make
from tests.ingest_helpers import error_item, items_store
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db

PER_PROJECT = (
    Event,
    Session,
    Issue,
    AlertSignal,
    FigureSessions,
    FigureCodes,
)


def _counts(project) -> dict[str, int]:
    counts = {
        model.__name__: model.objects.filter(project=project).count() for model in PER_PROJECT
    }
    counts["IssueHour"] = IssueHour.objects.filter(issue__project=project).count()
    counts["IssueSession"] = IssueSession.objects.filter(issue__project=project).count()
    return counts


@pytest.fixture
def two_projects(project, charlie, alice):
    other = project_create(name="Someone else's bot", owner=charlie)
    for target in (project, other):
        items_store([error_item(target.id, session_id=f"call-{n}", code=f"CODE_{n % 3}")
                     for n in range(12)])  # fmt: skip
    roll_up()
    api_key_create(project=project, scopes=ApiKey.SCOPES, name="deploy")
    sentry_key_for(project)
    rule_create(project=project, data=RuleIn(name="r", condition={"type": "new_issue"},
                channels=[{"type": "email", "to": ["o@example.com"]}]))  # fmt: skip
    invitation_create(project=project, email="dana@example.com", role="member", by=alice)
    return project, other


def test_a_wrong_name_deletes_nothing(two_projects, alice):
    project, _ = two_projects
    with pytest.raises(TeamChangeRefused, match="does not match"):
        project_delete(project=project, confirm_name="voice bot", by=alice)
    project.refresh_from_db()
    assert project.deleted_at is None and project.memberships.count() == 2


def test_deleting_hides_the_project_at_once_then_purges_it(two_projects, alice, bob):
    project, other = two_projects
    other_before = _counts(other)
    assert all(_counts(project).values()), _counts(project)
    project_delete(project=project, confirm_name=" Voice bot ", by=alice)
    # At once: nobody sees it, its keys and rules are gone, its links dead, ingest refuses it.
    assert list(projects_for_user(user=alice)) == [] and list(projects_for_user(user=bob)) == []
    for model in (Membership, ApiKey, SentryKey, AlertRule):
        assert not model.objects.filter(project=project).exists(), model.__name__
    assert not Invitation.objects.filter(project=project, revoked_at=None).exists()
    late = batch_rows([orjson.dumps(error_item(project.id))], received_at=datetime.now(UTC))
    persisted = batch_persist(late.rows)
    assert [reason for _, reason in persisted.rejected] == [f"unknown project {project.id}"]
    # Then the purge, in batches of 5 rows here: every row of the project, none of the other's.
    result = projects_purge(batch_rows=5, pause_ratio=0)
    assert result.ran and result.projects == 1 and result.batches > len(PER_PROJECT)
    assert result.rows == sum(other_before.values())  # the two projects held the same rows
    assert not Project.objects.filter(id=project.id).exists()
    assert _counts(other) == other_before
    assert projects_purge().projects == 0  # nothing left to do


def test_a_run_stops_at_its_budget_and_the_task_queues_the_next(two_projects, alice, monkeypatch):
    project, _ = two_projects
    project_delete(project=project, confirm_name="Voice bot", by=alice)
    cut = projects_purge(budget_seconds=0)
    assert cut.ran and not cut.finished and cut.rows == 0
    assert Event.objects.filter(project=project).exists()
    queued = []
    monkeypatch.setattr(
        "errorsink.tasks.projects_purge.apply_async", lambda **kw: queued.append(kw)
    )
    monkeypatch.setattr("errorsink.tasks.purge", lambda: PurgeResult(ran=True, finished=False))
    tasks.projects_purge()
    assert queued == [{"countdown": tasks.PURGE_AGAIN_SECONDS}]


def test_the_purge_deletes_by_address_within_each_day_only(project, charlie, alice):
    """Rows of two days' partitions sit at the same addresses in each: a deleted project's
    rows of one day and another project's of the other. Only the deleted project's go."""
    other = project_create(name="Someone else's bot", owner=charlie)
    today = datetime.now(UTC).date()
    first, second = today - timedelta(days=10), today - timedelta(days=9)
    for day in (first, second):
        partition_make(day)
    for target, day in ((project, first), (other, second)):
        noon = day_start(day) + timedelta(hours=12)
        items_store([error_item(target.id, session_id=f"call-{n}",
                                occurred_at=(noon + timedelta(seconds=n)).isoformat())
                     for n in range(12)])  # fmt: skip
    kept = sorted(Event.objects.filter(project=other).values_list("pk", flat=True))
    project_delete(project=project, confirm_name=project.name, by=alice)

    projects_purge(pause_ratio=0)

    assert not Event.objects.filter(project_id=project.id).exists()
    assert sorted(Event.objects.filter(project=other).values_list("pk", flat=True)) == kept
