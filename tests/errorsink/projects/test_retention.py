"""Retention: each project's old events go by its own retention, in batches, never before the
rollups counted them; the rollups keep their figures, and their hour rows go after 13 months."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from errorsink.projects.models import Project
from errorsink.projects.retention import (
    ADVISORY_LOCK_KEY,
    ROLLUP_TABLES,
    events_prune_batch,
    retention_prune,
)
from errorsink.projects.services import project_create
from errorsink.quality.figure_reads import project_quality
from errorsink.quality.models import FigureCodes, FigureSessions, RollupState
from errorsink.quality.rollups import rollups_apply
from errorsink.sessions.models import Event, Session
from errorsink.tasks import events_prune
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)
NOW = timezone.now().replace(microsecond=0)


def _event(project: Project, *, days_ago: float, received_days_ago: float | None = None,
           session_id: str = "s1", kind: str = Event.WARNING, code: str = "31002",
           details: dict | None = None) -> Event:  # fmt: skip
    occurred = NOW - timedelta(days=days_ago)
    received = occurred if received_days_ago is None else NOW - timedelta(days=received_days_ago)
    return Event.objects.create(
        project=project, event_id=f"ret-{next(_numbers)}", session_id=session_id, kind=kind,
        code=code, occurred_at=occurred, received_at=received, source="client",
        severity="medium", item_type="session_warning", raw={}, details=details or {},
    )  # fmt: skip


def _session(project: Project, session_id: str) -> Session:
    return Session.objects.create(
        project=project, session_id=session_id, first_seen=NOW, last_seen=NOW
    )


def _kept(project: Project) -> list[float]:
    """Days ago each remaining event of the project happened, oldest first."""
    events = Event.objects.filter(project=project).order_by("occurred_at")
    return [round((NOW - event.occurred_at) / timedelta(days=1), 1) for event in events]


def _with_retention(name: str, days: int) -> Project:
    project = project_create(name=name)
    Project.objects.filter(pk=project.pk).update(retention_days=days)
    return project


def test_it_gives_a_new_project_the_configured_default(settings):
    assert project_create(name="Default").retention_days == 30
    settings.ERRORSINK_RETENTION_DAYS = 90
    assert project_create(name="Longer").retention_days == 90


def test_it_deletes_each_projects_old_events_by_its_own_retention():
    month, quarter = _with_retention("Month", 30), _with_retention("Quarter", 90)
    for project in (month, quarter):
        for days in (1, 29.9, 30.1, 45, 89.9, 90.1, 400):
            _event(project, days_ago=days)
    roll_up()

    result = retention_prune(now=NOW)

    assert _kept(month) == [29.9, 1]
    assert _kept(quarter) == [89.9, 45, 30.1, 29.9, 1]
    assert (result.ran, result.events, result.finished) == (True, 7, True)


def test_it_never_deletes_what_the_rollups_have_not_counted(project):
    counted = [_event(project, days_ago=60) for _ in range(3)]
    not_yet = [_event(project, days_ago=60) for _ in range(2)]
    state, _ = RollupState.objects.get_or_create(id=1)
    assert rollups_apply(after=state.watermark, through=counted[-1].pk)

    assert retention_prune(now=NOW).events == 3

    assert sorted(Event.objects.values_list("pk", flat=True)) == [e.pk for e in not_yet]
    roll_up()
    assert retention_prune(now=NOW).events == 2


def test_it_deletes_nothing_before_the_rollups_ever_ran(project):
    _event(project, days_ago=60)
    assert retention_prune(now=NOW).events == 0
    assert Event.objects.count() == 1


def test_it_counts_age_from_when_it_happened_or_arrived_whichever_is_earlier(project):
    late = _event(project, days_ago=45, received_days_ago=0)  # buffered by a client for weeks
    future = _event(project, days_ago=-365, received_days_ago=31)  # a clock a year ahead
    recent = _event(project, days_ago=29, received_days_ago=0)
    roll_up()

    retention_prune(now=NOW)

    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Event.objects.filter(pk__in=[late.pk, future.pk]).exists()


def test_it_deletes_the_sessions_it_empties_and_keeps_the_others(project):
    for session_id in ("emptied", "mixed", "recent"):
        _session(project, session_id)
    _session(project, "never-had-events")  # not this prune's business
    _event(project, days_ago=40, session_id="emptied")
    _event(project, days_ago=40, session_id="emptied")
    _event(project, days_ago=40, session_id="mixed")
    _event(project, days_ago=2, session_id="mixed")
    _event(project, days_ago=2, session_id="recent")
    _event(project, days_ago=40, session_id="")  # no session at all
    roll_up()

    result = retention_prune(now=NOW)

    assert (result.events, result.sessions) == (4, 1)
    assert sorted(Session.objects.values_list("session_id", flat=True)) == [
        "mixed", "never-had-events", "recent"
    ]  # fmt: skip


def test_it_deletes_in_batches_of_the_size_asked_oldest_first(project):
    for days in range(40, 52):
        _event(project, days_ago=days, session_id=f"s{days}")
    roll_up()
    cutoff = NOW - timedelta(days=30)
    through = Event.objects.order_by("-pk").first().pk

    first = events_prune_batch(project_id=project.pk, before=cutoff, through=through, limit=5)

    assert first == (5, 0)  # no Session rows in this test
    assert _kept(project) == [46, 45, 44, 43, 42, 41, 40]
    # 12 events in batches of 5: 5, 5, 2; then one empty batch per rollup table.
    result = retention_prune(now=NOW, batch_rows=5)
    assert (result.events, result.batches) == (7, 2 + len(ROLLUP_TABLES))


def test_it_deletes_a_batch_and_its_emptied_sessions_in_five_queries(
    project, django_assert_num_queries
):
    for n in range(20):
        _session(project, f"s{n}")
        _event(project, days_ago=40, session_id=f"s{n}")
    roll_up()
    # savepoint, events (ids, delete, sessions touched), lock sessions, delete empty, release:
    # the same for 20 sessions as for one.
    with django_assert_num_queries(5):
        deleted = events_prune_batch(
            project_id=project.pk, before=NOW - timedelta(days=30), through=10**12, limit=1000
        )
    assert deleted == (20, 20)


def test_it_keeps_the_quality_figures_after_the_raw_events_are_gone(project):
    Project.objects.filter(pk=project.pk).update(retention_days=1)
    for n in range(30):
        kind, code, details = [
            (Event.WARNING, "31002", {"metrics": {"jitter_ms": 10 + n}}),
            (Event.ERROR, "AGENT_CHILD_CRASHED", {}),
            (Event.TERMINATION, "USER_BUSY", {"termination": {"cause": "USER_BUSY",
                                                              "sip_code": 486}}),
        ][n % 3]  # fmt: skip
        _event(project, days_ago=1.5 + n / 10, session_id=f"s{n % 7}", kind=kind, code=code,
               details=details)  # fmt: skip
    _event(project, days_ago=0.5, session_id="s1")
    roll_up()
    before = {window: project_quality(project_id=project.pk, window=window, now=NOW)
              for window in ("7d", "30d")}  # fmt: skip
    assert before["7d"]["sessions"]["active"] == 7

    assert retention_prune(now=NOW).events == 30

    assert Event.objects.count() == 1
    for window, figures in before.items():
        assert project_quality(project_id=project.pk, window=window, now=NOW) == figures


def _rollup_rows(project: Project, span: str, bucket: datetime) -> None:
    FigureSessions.objects.create(project=project, span=span, bucket=bucket, build_id="",
                                  events=1, errors=0, warnings=1, active=b"",
                                  degraded=b"")  # fmt: skip
    FigureCodes.objects.create(project=project, span=span, bucket=bucket, kind="warning",
                               code="31002", sip_code=0, build_id="", count=1,
                               sessions=b"")  # fmt: skip


def test_it_keeps_rollup_hours_for_thirteen_months(project):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz - interval '13 months'", [NOW])
        (horizon,) = cursor.fetchone()
    too_old, kept = horizon - timedelta(hours=1), horizon + timedelta(hours=1)
    _rollup_rows(project, "h", too_old)
    _rollup_rows(project, "h", kept)
    _rollup_rows(project, "m", too_old)  # minute rows are the rollups' own to prune
    day = too_old.replace(hour=0)
    FigureSessions.objects.create(project=project, span="d", bucket=day, build_id="", events=1,
                                  errors=0, warnings=1, active=b"", degraded=b"")  # fmt: skip

    result = retention_prune(now=NOW)

    assert result.rollup_rows == 3  # an hour row of each table, and the old day's
    for model in (FigureSessions, FigureCodes):
        rows = sorted(model.objects.values_list("span", "bucket"))
        assert rows == [("h", kept), ("m", too_old)]


def test_it_stops_at_its_time_budget_and_the_next_run_goes_on(project):
    for _ in range(3):
        _event(project, days_ago=40)
    roll_up()

    stopped = retention_prune(now=NOW, budget_seconds=0)
    assert (stopped.ran, stopped.finished, stopped.events) == (True, False, 0)

    assert retention_prune(now=NOW).events == 3


def test_it_runs_from_the_celery_task_and_reports_what_went(project):
    _session(project, "s1")
    _event(project, days_ago=40)
    roll_up()
    result = events_prune.apply().get()
    assert {key: result[key] for key in ("ran", "events", "sessions", "finished")} == {
        "ran": True, "events": 1, "sessions": 1, "finished": True
    }  # fmt: skip


def _other_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        password=settings["PASSWORD"], dbname=settings["NAME"], autocommit=True,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_it_does_nothing_while_another_run_holds_the_lock(project):
    with _other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert retention_prune(now=NOW).ran is False
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    assert retention_prune(now=NOW).ran is True


@pytest.mark.django_db(transaction=True)
def test_it_skips_a_session_an_ingest_batch_holds_instead_of_waiting(project):
    _session(project, "busy")
    _session(project, "idle")
    _event(project, days_ago=40, session_id="busy")
    _event(project, days_ago=40, session_id="idle")
    roll_up()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")  # waiting would fail the test, not hang it
    try:
        with _other_connection() as ingest, ingest.transaction():
            # What ingest's session upsert holds until its batch commits.
            ingest.execute("UPDATE errorsink_session SET event_count = event_count + 1 "
                           "WHERE session_id = 'busy'")  # fmt: skip
            result = retention_prune(now=NOW)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert (result.events, result.sessions) == (2, 1)
    assert list(Session.objects.values_list("session_id", flat=True)) == ["busy"]
