"""Batches of rows against the real PostgreSQL: one transaction, each event once, and the rows
that cannot be stored handed back with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.db import transaction

from errorsink.alerts.models import AlertCount, AlertRule
from errorsink.ingest import persist
from errorsink.ingest.batch import batch_rows
from errorsink.ingest.builds import SessionBuilds
from errorsink.ingest.persist import EventRow, batch_persist, events_persist
from errorsink.issues.models import Issue
from errorsink.live import epoch_us, stored_error
from errorsink.sessions.event_keys import (
    GENERATION_DAYS,
    generation_make,
    generation_of,
    generation_ready,
)
from errorsink.sessions.models import Event, Session
from tests.errorsink.ingest.test_pipeline import UNKNOWN_PROJECT, seed_session_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def key_generation_checked():
    """Ingest checks once per process that the key table has this week's partition
    (errorsink/sessions/event_keys.py): done before the queries a test counts."""
    generation_ready(generation_of(datetime.now(UTC)))


def _items(project_id, count: int, prefix: str) -> list[bytes]:
    return [orjson.dumps({**seed_session_error(project_id), "event_id": f"{prefix}{n}"})
            for n in range(count)]  # fmt: skip


def _rows(items: list[bytes]) -> list[EventRow]:
    return batch_rows(items, received_at=datetime.now(UTC)).rows


def test_it_writes_a_batch_in_a_fixed_number_of_queries(project, django_assert_num_queries):
    items = [orjson.dumps({**seed_session_error(project.id), "event_id": f"q{n}",
                           "session_id": f"s{n % 40}"}) for n in range(300)]  # fmt: skip
    rows = _rows(items)
    # BEGIN, look the keys up in the previous generation (errorsink/sessions/event_keys.py),
    # SAVEPOINT, draw new ids, COPY keys and events, upsert issues (with their hours, sessions
    # and alert signals), add new sessions to the issues, upsert sessions, read the project's
    # event-count alert rules, RELEASE, COMMIT: the same twelve for 300 rows as for one.
    with django_assert_num_queries(12):
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
    with django_assert_num_queries(13):  # the twelve above, and one upsert of every counter
        events_persist(_rows(items))
    counted = dict(AlertCount.objects.values_list("rule__name", "count"))
    assert counted == {"AGENT_CHILD_CRASHED": 300}


def test_an_event_without_a_build_gets_its_sessions_build_read_once_per_process(
    project, django_assert_num_queries, monkeypatch
):
    def warning(n: int, session_id: str, **fields) -> bytes:
        return orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                             "session_id": session_id, "code": "HIGH_JITTER",
                             "event_id": f"w{n}", **fields})  # fmt: skip

    events_persist(_rows([warning(0, "known", build_id="v1")]))  # stored by another worker
    monkeypatch.setattr(persist, "SESSION_BUILDS", SessionBuilds())  # which this one never saw
    rows = _rows([
        warning(1, "known"),  # the stored session's build
        warning(2, "later"),  # the build a later item of the batch gives the session
        warning(3, "later", build_id="v3"),
        warning(4, "unknown"),  # nothing says: none
        warning(5, "other", build_id="v9"),
        warning(6, "unknown", build_id=""),
    ])  # fmt: skip
    # The nine of events_persist (warnings: no issues) and one read of the stored sessions builds.
    with django_assert_num_queries(10):
        events_persist(rows)
    builds = dict(Event.objects.values_list("event_id", "build_id"))
    assert builds == {"w0": "v1", "w1": "v1", "w2": "v3", "w3": "v3", "w4": "", "w5": "v9",
                      "w6": ""}  # fmt: skip
    # Sessions seen with a build are remembered: their next rows cost no read.
    with django_assert_num_queries(9):
        events_persist(_rows([warning(7, "known"), warning(8, "later"), warning(9, "other")]))
    assert Event.objects.get(event_id="w8").build_id == "v3"
    # A session still without one is asked for again: its build may have come since.
    Session.objects.filter(session_id="unknown").update(build_id="v4")
    with django_assert_num_queries(10):
        events_persist(_rows([warning(10, "unknown")]))
    assert Event.objects.get(event_id="w10").build_id == "v4"
    # Items that all name their build cost no read.
    with django_assert_num_queries(9):
        events_persist(_rows([warning(11, "new", build_id="v9")]))


def test_a_session_s_newer_build_reaches_its_later_rows_whatever_the_batch(project, monkeypatch):
    monkeypatch.setattr(persist, "SESSION_BUILDS", SessionBuilds())

    def item(n: int, **fields) -> bytes:
        return orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                             "session_id": "s", "code": "HIGH_JITTER", "event_id": f"b{n}",
                             **fields})  # fmt: skip

    events_persist(_rows([item(1, build_id="1.0"), item(2)]))
    events_persist(_rows([item(3, build_id="1.1")]))  # every row names its build
    events_persist(_rows([item(4)]))
    assert Event.objects.get(event_id="b4").build_id == "1.1"


def test_a_batch_rolled_back_teaches_the_memory_nothing(project, monkeypatch):
    monkeypatch.setattr(persist, "SESSION_BUILDS", SessionBuilds())
    item = {"type": "session_warning", "project_id": str(project.id), "session_id": "r",
            "code": "HIGH_JITTER"}  # fmt: skip
    with pytest.raises(RuntimeError), transaction.atomic():
        events_persist(_rows([orjson.dumps({**item, "event_id": "r1", "build_id": "ghost"})]))
        raise RuntimeError("the batch fails after its rows were written")
    events_persist(_rows([orjson.dumps({**item, "event_id": "r2"})]))
    assert Event.objects.get(event_id="r2").build_id == ""


def test_an_error_without_a_build_counts_its_sessions_build_in_its_issue(project, monkeypatch):
    events_persist(_rows([orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                                        "session_id": "s-err", "code": "HIGH_JITTER",
                                        "build_id": "v7"})]))  # fmt: skip
    monkeypatch.setattr(persist, "SESSION_BUILDS", SessionBuilds())  # read from the session
    error = {**seed_session_error(project.id), "session_id": "s-err", "build_id": ""}
    events_persist(_rows([orjson.dumps(error)]))
    assert Issue.objects.get().builds == ["v7"]
    assert Event.objects.get(kind="error").build_id == "v7"


def test_it_checks_the_projects_of_a_batch_in_one_more_query(project, django_assert_num_queries):
    rows = _rows(_items(project.id, 300, "p") + _items(UNKNOWN_PROJECT, 2, "u"))

    with django_assert_num_queries(13):  # the projects, then the twelve of events_persist
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
    announced = again.to_announce()[project.id]
    assert [entry[:2] for entry in announced] == [(e.id, e.kind) for e in stored]
    # Each error comes with what the project pages pick rows by; the new one exactly as stored.
    newest = stored.last()
    assert announced[-1] == stored_error(newest.id, newest.code, newest.source,
                                         epoch_us(newest.received_at))  # fmt: skip
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


def _warning(project_id, **fields) -> bytes:
    # No event_id and no time: the id comes from the content, the time from the batch.
    return orjson.dumps({"type": "session_warning", "project_id": str(project_id),
                         "session_id": "s1", "code": "HIGH_JITTER", **fields})  # fmt: skip


@pytest.mark.parametrize("fields", [
    {},  # no time of its own: each delivery takes its batch's
    {"event_id": "captured-twice", "occurred_at": "2026-06-19T12:00:00Z"},
], ids=["without-a-time", "same-id-another-time"])  # fmt: skip
def test_an_event_is_stored_once_when_delivered_again_after_midnight(project, fields):
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    events_persist(batch_rows([_warning(project.id, **fields)],
                              received_at=midnight - timedelta(seconds=30)).rows)  # fmt: skip
    if "occurred_at" in fields:  # a second capture of one event id, stamped again
        fields = {**fields, "occurred_at": "2026-06-20T08:00:00Z"}

    again = batch_rows(
        [_warning(project.id, **fields)], received_at=midnight + timedelta(seconds=30)
    )
    batch = events_persist(again.rows)

    [stored] = Event.objects.all()
    assert batch.count == 0 and batch.to_announce() == {project.id: [(stored.pk, "warning")]}
    assert Session.objects.get().warning_count == 1


def test_an_event_is_stored_once_a_generation_later_and_again_after_two(project):
    """docs/storage.md: a key is kept for one to two generations of arrival."""
    now = datetime.now(UTC)
    week = timedelta(days=GENERATION_DAYS)
    generation_make(generation_of(now - 2 * week))
    for received_at in (now - 2 * week, now - week, now):
        events_persist(batch_rows([_warning(project.id)], received_at=received_at).rows)
    # Stored two weeks ago; a week ago found in the previous generation; now the key of two
    # weeks ago is two generations back, no longer looked up: stored again.
    assert Event.objects.count() == 2
