"""The one read layer of events and sessions: bounded lists, one query each, never `raw`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from errorsink.issues.selectors import errors_page
from errorsink.projects.services import project_create
from errorsink.search import ErrorSearch
from errorsink.sessions import selectors
from errorsink.sessions.models import Event, Session
from tests.dashboard.conftest import event_create

pytestmark = pytest.mark.django_db


def test_it_lists_the_latest_errors_by_arrival_with_a_limit_and_filters(
    project, django_assert_num_queries
):
    now = timezone.now()
    errors = [event_create(project, received_at=now + timedelta(seconds=i)) for i in range(25)]
    runner = event_create(project, code="RUNNER_INTERNAL", source="runner", received_at=now)
    event_create(project, kind=Event.WARNING, code="31002", received_at=now + timedelta(hours=1))

    def latest(**filters) -> list[Event]:
        return errors_page(project_id=project.id, search=ErrorSearch(**filters)).items

    # One read, planned without a sort (a setting before it and, in the test's transaction,
    # its reset after: errorsink/sessions/partitions.py merged_in_order).
    with django_assert_num_queries(3):
        newest = latest()
    assert [e.pk for e in newest] == [e.pk for e in reversed(errors)][: selectors.LATEST_ERRORS]
    assert latest(code="RUNNER_INTERNAL") == [runner]
    assert latest(source="runner") == [runner]
    assert len(latest(limit=3)) == 3


def test_it_never_loads_the_raw_item(project):
    event_create(project, session_id="s")
    reads = [
        errors_page(project_id=project.id, search=ErrorSearch()).items,
        selectors.session_events(project_id=project.id, session_id="s").events,
        selectors.events_by_ids(ids=[e.pk for e in Event.objects.all()]),
    ]
    assert all("raw" in event.get_deferred_fields() for events in reads for event in events)


def test_it_reads_a_session_in_time_order_and_says_when_it_cut_it(
    project, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(selectors, "SESSION_EVENTS_MAX", 3)
    start = timezone.now()
    made = [event_create(project, session_id="s", occurred_at=start - timedelta(seconds=i))
            for i in range(4)]  # fmt: skip
    with django_assert_num_queries(1):
        timeline = selectors.session_events(project_id=project.id, session_id="s")
    assert [e.pk for e in timeline.events] == [e.pk for e in reversed(made)][:3]
    assert (timeline.truncated, timeline.limit) == (True, 3)

    whole = selectors.session_events(project_id=project.id, session_id="s", kinds=("warning",))
    assert (whole.events, whole.truncated) == ([], False)


def test_it_knows_a_session_by_its_row_or_its_events(project):
    now = timezone.now()
    Session.objects.create(project=project, session_id="row", first_seen=now, last_seen=now)
    event_create(project, session_id="events")
    assert selectors.session_exists(project_id=project.id, session_id="row")
    assert selectors.session_exists(project_id=project.id, session_id="events")
    assert not selectors.session_exists(project_id=project.id, session_id="nope")
    assert not selectors.session_exists(project_id=project.id, session_id="")
    assert selectors.session_get(project_id=project.id, session_id="row").session_id == "row"
    assert selectors.session_get(project_id=project.id, session_id="events") is None


def test_it_reads_rows_by_id_within_a_project_and_session(alice, project):
    other = project_create(name="Other", owner=alice)
    mine = event_create(project, session_id="s1")
    elsewhere = event_create(project, session_id="s2")
    theirs = event_create(other, session_id="s1")
    ids = [mine.pk, elsewhere.pk, theirs.pk]
    assert len(selectors.events_by_ids(ids=ids)) == 3
    assert selectors.events_by_ids(ids=ids, project_id=project.id, session_id="s1") == [mine]
    metas = selectors.event_metas_by_ids(ids=[*ids, 10**12])
    assert set(metas) == set(ids)
    assert metas[theirs.pk].project_id == other.id and metas[mine.pk].order == (
        mine.received_at,
        mine.pk,
    )
