"""The event table's daily partitions: made ahead, taking rows a clock ahead put in the default
partition, dropped whole once every project's retention and the rollups have passed them."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from errorsink.issues.selectors import errors_page
from errorsink.projects.models import Project
from errorsink.projects.retention import retention_prune
from errorsink.projects.services import project_create
from errorsink.quality.models import RollupState
from errorsink.quality.rollups import rollups_apply
from errorsink.search import ErrorSearch
from errorsink.sessions.event_keys import generation_make, generation_name, generation_of
from errorsink.sessions.models import Event, Session
from errorsink.sessions.partitions import (
    DAYS_AHEAD,
    DEFAULT_PARTITION,
    STATISTICS_TARGET,
    day_start,
    partition_days,
    partition_make,
    partition_name,
    partitions_make,
    partitions_of,
)
from tests.errorsink.projects.test_retention import _other_connection
from tests.rollup_helpers import roll_up

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)
NOW = timezone.now().replace(microsecond=0)
TODAY = NOW.date()


def _event(project: Project, *, days_ago: float, session_id: str = "s1") -> Event:
    """An event at noon (UTC) of the day ``days_ago`` whole days before today; fractions of a
    day move it from noon."""
    moment = day_start(_days_ago(int(days_ago))) + timedelta(hours=12 - (days_ago % 1) * 24)
    return Event.objects.create(
        project=project, event_id=f"part-{next(_numbers)}", session_id=session_id,
        kind=Event.WARNING, code="31002", occurred_at=moment, received_at=moment,
        source="client", severity="medium", item_type="session_warning", raw={}, details={},
    )  # fmt: skip


def _session(project: Project, session_id: str, *, days_ago: float) -> Session:
    moment = day_start(_days_ago(int(days_ago))) + timedelta(hours=12 - (days_ago % 1) * 24)
    return Session.objects.create(
        project=project, session_id=session_id, first_seen=moment, last_seen=moment
    )


def _table_of(event: Event) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM errorsink_event WHERE id = %s",
                       [event.pk])  # fmt: skip
        return cursor.fetchone()[0]


def _days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _with_retention(name: str, days: int) -> Project:
    project = project_create(name=name)
    Project.objects.filter(pk=project.pk).update(retention_days=days)
    return project


def test_it_makes_the_days_ahead_and_the_days_a_stop_missed():
    partitions_make(now=NOW)
    days = partition_days()
    assert {TODAY + timedelta(days=n) for n in range(DAYS_AHEAD + 1)} <= set(days)

    made = partitions_make(now=NOW + timedelta(days=10))  # the stack was down for ten days

    after = partition_days()
    assert made == [day for day in after if day not in days]
    assert after[-1] == TODAY + timedelta(days=10 + DAYS_AHEAD)
    newest_before = days[-1]
    gapless = [newest_before + timedelta(days=n) for n in range((after[-1] - newest_before).days)]
    assert set(gapless) <= set(after)
    assert partitions_make(now=NOW + timedelta(days=10)) == []


def test_a_new_days_partition_takes_its_rows_from_the_default_partition(project):
    ahead = _event(project, days_ago=-20)  # a clock twenty days ahead
    assert _table_of(ahead) == DEFAULT_PARTITION

    partitions_make(now=NOW + timedelta(days=18))

    assert _table_of(ahead) == partition_name(TODAY + timedelta(days=20))
    assert list(Event.objects.values_list("pk", "event_id")) == [(ahead.pk, ahead.event_id)]


def test_retention_drops_the_days_past_every_projects_retention(project):
    for days in (41, 40, 5):
        partition_make(_days_ago(days))
    old = [_event(project, days_ago=41, session_id="old"), _event(project, days_ago=40.4)]
    recent = _event(project, days_ago=5, session_id="recent")
    _session(project, "old", days_ago=41)
    _session(project, "recent", days_ago=5)
    assert {_table_of(event) for event in old} == {partition_name(_days_ago(41)),
                                                   partition_name(_days_ago(40))}  # fmt: skip
    roll_up()

    result = retention_prune(now=NOW)

    assert result.partitions_dropped == 2
    assert _days_ago(40) not in partition_days() and _days_ago(41) not in partition_days()
    assert _days_ago(5) in partition_days()
    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert list(Session.objects.values_list("session_id", flat=True)) == ["recent"]


def test_a_shorter_retention_deletes_its_rows_of_a_day_the_others_keep():
    month, quarter = _with_retention("Month", 30), _with_retention("Quarter", 90)
    partition_make(_days_ago(40))
    for project in (month, quarter):
        _session(project, "s1", days_ago=40)
        _event(project, days_ago=40)
    roll_up()

    result = retention_prune(now=NOW)

    assert result.partitions_dropped == 0 and _days_ago(40) in partition_days()
    assert (result.events, result.sessions) == (1, 1)
    assert list(Event.objects.values_list("project", flat=True)) == [quarter.pk]
    assert list(Session.objects.values_list("project", flat=True)) == [quarter.pk]


def test_no_day_goes_before_the_rollups_counted_it(project):
    partition_make(_days_ago(40))
    counted = _event(project, days_ago=40)
    state, _ = RollupState.objects.get_or_create(id=1)
    assert rollups_apply(after=state.watermark, through=counted.pk)
    _event(project, days_ago=40)  # arrived late, not counted yet

    assert retention_prune(now=NOW).partitions_dropped == 0

    roll_up()
    assert retention_prune(now=NOW).partitions_dropped == 1
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_drop_waits_briefly_for_a_long_reader_and_the_next_run_drops(project):
    partition_make(_days_ago(40))
    _event(project, days_ago=40)
    roll_up()
    with _other_connection() as reader, reader.transaction():
        reader.execute("SELECT count(*) FROM errorsink_event")  # holds the table until it ends
        held = retention_prune(now=NOW)
    assert held.partitions_dropped == 0 and Event.objects.count() == 1

    assert retention_prune(now=NOW).partitions_dropped == 1
    assert not Event.objects.exists()


def test_a_day_detached_but_not_dropped_by_a_stopped_run_is_dropped_by_the_next(project):
    partition_make(_days_ago(40))
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE errorsink_event DETACH PARTITION {partition_name(_days_ago(40))}"
        )

    retention_prune(now=NOW)

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(_days_ago(40))])
        assert cursor.fetchone()[0] is None


def _statistics_targets(table: str) -> set:
    """The statistics target of each column of ``table`` and of each expression of its indexes
    (-1 where PostgreSQL's default applies)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped "
            "UNION ALL SELECT a.attstattarget FROM pg_index x "
            "CROSS JOIN unnest(x.indkey::int2[]) WITH ORDINALITY AS k(column_number, position) "
            "JOIN pg_attribute a ON a.attrelid = x.indexrelid AND a.attnum = k.position "
            "WHERE x.indrelid = %s::regclass AND k.column_number = 0",
            [table, table],
        )
        return {target for (target,) in cursor.fetchall()}


def test_a_new_days_partition_and_key_generation_are_analyzed_from_a_small_sample():
    day = TODAY + timedelta(days=DAYS_AHEAD + 5)
    partition_make(day)
    assert _statistics_targets(partition_name(day)) == {STATISTICS_TARGET}
    generation = generation_of(day_start(day)) + 3
    generation_make(generation)
    assert _statistics_targets(generation_name(generation)) == {STATISTICS_TARGET}


def test_every_partition_the_migrations_left_has_the_light_target():
    for table in ("errorsink_event", "errorsink_event_key"):
        for partition in partitions_of(table):
            assert _statistics_targets(partition) == {STATISTICS_TARGET}, partition


def test_a_projects_newest_errors_cost_a_page_before_the_days_partition_is_analyzed(project):
    # Analyzed while empty, then 20,000 errors arrive: PostgreSQL believes the project has a
    # row or two there, and left to itself it collects all 20,000 and sorts them, per read.
    partition = partition_name(TODAY)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition}")
        cursor.execute(
            "INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name,"
            " message, occurred_at, received_at, source, severity, build_id, stack, details,"
            " item_type, raw) SELECT %s, 'many-' || n, 's1', 'error', 'AGENT_CHILD_CRASHED', '',"
            " 'crash', %s, %s - n * interval '1 ms', 'agent', 'high', '', '', '{}',"
            " 'session_error', '{}'"
            " FROM generate_series(1, 20000) AS n",
            [project.id, NOW, NOW],
        )
    plans = []
    with connection.execute_wrapper(_explained_too(plans)):
        page = errors_page(project_id=project.id, search=ErrorSearch())
    assert [event.event_id for event in page.items] == [f"many-{n}" for n in range(1, 21)]
    [plan] = plans
    assert "Merge Append" in plan and not re.search(r"->\s+Sort\b", plan), plan
    assert max(int(rows) for rows in re.findall(r"actual time=\S+ rows=(\d+)", plan)) <= 21, plan


def _explained_too(plans: list):
    """Runs each read of the event table under EXPLAIN ANALYZE first, in its own transaction
    and with its planner settings, so the plan is the one the read got."""

    def explain(execute, sql, params, many, context):
        if sql.startswith("SELECT") and "errorsink_event" in sql:
            context["cursor"].execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    return explain
