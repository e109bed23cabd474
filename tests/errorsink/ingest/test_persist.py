"""Batches of rows against the real PostgreSQL: one transaction, each event once, and the rows
that cannot be stored handed back with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from errorsink.alerts.models import AlertCount, AlertRule
from errorsink.ingest.batch import batch_rows
from errorsink.ingest.persist import EventRow, batch_persist, events_persist
from errorsink.sessions.models import Event, Session
from tests.errorsink.ingest.test_pipeline import UNKNOWN_PROJECT, seed_session_error

pytestmark = pytest.mark.django_db(transaction=True)


def _items(project_id, count: int, prefix: str) -> list[bytes]:
    return [orjson.dumps({**seed_session_error(project_id), "event_id": f"{prefix}{n}"})
            for n in range(count)]  # fmt: skip


def _rows(items: list[bytes]) -> list[EventRow]:
    return batch_rows(items, received_at=datetime.now(UTC)).rows


def test_it_writes_a_batch_in_a_fixed_number_of_queries(project, django_assert_num_queries):
    items = [orjson.dumps({**seed_session_error(project.id), "event_id": f"q{n}",
                           "session_id": f"s{n % 40}"}) for n in range(300)]  # fmt: skip
    rows = _rows(items)
    # BEGIN, SAVEPOINT, draw new ids, COPY, upsert sessions, upsert issues (with their hours,
    # sessions and alert signals), add new sessions to the issues, read the project's
    # event-count alert rules, RELEASE, COMMIT: the same ten for 300 rows as for one.
    with django_assert_num_queries(10):
        stored = events_persist(rows)
    assert stored.count == 300
    assert Session.objects.count() == 40
    assert sum(Session.objects.values_list("error_count", flat=True)) == 300


def test_event_count_alert_rules_cost_a_batch_one_more_query(project, django_assert_num_queries):
    for code in ("AGENT_CHILD_CRASHED", "OTHER"):
        AlertRule.objects.create(project=project, name=code, kind="event_count", channels=[],
                                 condition={"type": "event_count", "threshold": 1,
                                            "window_seconds": 60, "code": code})  # fmt: skip
    items = [orjson.dumps({**seed_session_error(project.id), "event_id": f"q{n}"})
             for n in range(300)]  # fmt: skip
    with django_assert_num_queries(11):  # the ten above, and one upsert of every counter
        events_persist(_rows(items))
    counted = dict(AlertCount.objects.values_list("rule__name", "count"))
    assert counted == {"AGENT_CHILD_CRASHED": 300}


def test_an_event_without_a_build_gets_its_sessions_build_in_one_more_query(
    project, django_assert_num_queries
):
    def warning(n: int, session_id: str, **fields) -> bytes:
        return orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                             "session_id": session_id, "code": "HIGH_JITTER",
                             "event_id": f"w{n}", **fields})  # fmt: skip

    events_persist(_rows([warning(0, "known", build_id="v1")]))  # stored earlier
    rows = _rows([
        warning(1, "known"),  # the stored session's build
        warning(2, "later"),  # the build a later item of the batch gives the session
        warning(3, "later", build_id="v3"),
        warning(4, "unknown"),  # nothing says: none
        warning(5, "other", build_id="v9"),
        warning(6, "unknown", build_id=""),
    ])  # fmt: skip
    # The seven of events_persist (warnings: no issues) and one read of the stored sessions builds.
    with django_assert_num_queries(8):
        events_persist(rows)
    builds = dict(Event.objects.values_list("event_id", "build_id"))
    assert builds == {"w0": "v1", "w1": "v1", "w2": "v3", "w3": "v3", "w4": "", "w5": "v9",
                      "w6": ""}  # fmt: skip
    # Items that all name their build cost no read.
    with django_assert_num_queries(7):
        events_persist(_rows([warning(7, "known", build_id="v9")]))


def test_it_checks_the_projects_of_a_batch_in_one_more_query(project, django_assert_num_queries):
    rows = _rows(_items(project.id, 300, "p") + _items(UNKNOWN_PROJECT, 2, "u"))

    with django_assert_num_queries(11):  # the projects, then the ten of events_persist
        persisted = batch_persist(rows)

    assert persisted.stored.count == 300
    assert [(row.event_id, reason) for row, reason in persisted.rejected] == [
        ("u0", f"unknown project {UNKNOWN_PROJECT}"),
        ("u1", f"unknown project {UNKNOWN_PROJECT}"),
    ]


def test_it_falls_back_to_on_conflict_when_a_batch_holds_a_stored_event(project):
    events_persist(_rows(_items(project.id, 1, "dup")))  # "dup0" was stored by an earlier delivery

    stored = events_persist(_rows(_items(project.id, 3, "dup")))

    assert stored.count == 2
    assert Event.objects.count() == 3
    assert Session.objects.get().error_count == 3


def test_a_re_delivery_announces_again_what_it_finds_stored(project):
    # A worker killed after its commit and before its notice: the batch comes back to another
    # worker, whose dashboards must still hear of every event of it.
    first = events_persist(_rows(_items(project.id, 2, "k")))
    again = events_persist(_rows(_items(project.id, 3, "k")))
    stored = Event.objects.filter(project_id=project.id).order_by("id")
    assert again.count == 1
    assert again.to_announce() == {project.id: [(e.id, e.kind) for e in stored]}
    assert first.to_announce() == first.by_project


def test_it_stores_the_rest_of_a_batch_around_a_row_the_database_refuses(project):
    rows = _rows(_items(project.id, 5, "r"))
    rows[2] = rows[2]._replace(raw="{not json")  # what the raw json column cannot take

    persisted = batch_persist(rows)

    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["r0", "r1", "r3", "r4"]
    assert persisted.stored.count == 4
    [(row, reason)] = persisted.rejected
    assert row.event_id == "r2"
    assert reason.startswith("rejected by the database: invalid input syntax for type json")
