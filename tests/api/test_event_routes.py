"""GET session-errors, one session's errors and its timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from errorsink.sessions.models import Event, Session
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db


def test_it_lists_the_last_20_errors_newest_first(api, project, make_event, other_project):
    base = timezone.now() - timedelta(hours=1)
    made = [make_event(received_at=base + timedelta(seconds=i)) for i in range(25)]
    make_event(kind=Event.WARNING, code="HIGH_JITTER", received_at=base + timedelta(hours=2))
    make_event(project=other_project, received_at=base + timedelta(hours=2))
    response = api.get(f"/projects/{project.id}/session-errors")
    assert response.status_code == 200
    body = response.json()
    assert body["project_id"] == str(project.id)
    assert [e["id"] for e in body["errors"]] == [e.id for e in reversed(made[5:])]


def test_it_orders_by_arrival_not_by_the_time_the_client_claims(api, project, make_event):
    now = timezone.now()
    late_arrival = make_event(occurred_at=now - timedelta(days=3), received_at=now)
    earlier = make_event(occurred_at=now, received_at=now - timedelta(seconds=5))
    same_instant = [make_event(received_at=now - timedelta(seconds=1)) for _ in range(2)]
    ids = [e["id"] for e in api.get(f"/projects/{project.id}/session-errors").json()["errors"]]
    assert ids == [late_arrival.id, same_instant[1].id, same_instant[0].id, earlier.id]


def test_it_describes_each_code_from_the_catalog(api, project, make_event):
    make_event(code="AGENT_CHILD_CRASHED")
    make_event(code="SOMETHING_NEW")
    errors = api.get(f"/projects/{project.id}/session-errors").json()["errors"]
    unknown, known = errors
    assert unknown["code"] == "SOMETHING_NEW" and unknown["catalog"] is None
    assert known["catalog"]["code"] == "AGENT_CHILD_CRASHED"
    assert known["catalog"]["description"]
    assert set(known) >= {"event_id", "session_id", "message", "occurred_at", "received_at",
                          "source", "severity", "recoverable", "build_id", "stack",
                          "customer_context", "details", "kind"}  # fmt: skip


def test_it_shows_the_same_catalog_entry_as_the_dashboard(api, client, alice, project, make_event):
    # A Telnyx warning kept by name has its catalog entry under its number (31003).
    make_event(session_id="s", kind=Event.WARNING, code="HIGH_PACKET_LOSS",
               details={"sdk": "telnyx"})  # fmt: skip
    entry = api.get(f"/projects/{project.id}/sessions/s/timeline").json()["events"][0]["catalog"]
    client.force_login(alice)
    page = client.get(reverse("session-timeline", args=[project.id, "s"]))
    assert entry is not None and entry["name"] == "HIGH_PACKET_LOSS"
    assert page.context["events"][0].code_info.code == entry["code"]
    assert entry["description"].replace("'", "&#x27;") in page.content.decode()


def test_it_returns_an_empty_list_for_a_project_without_errors(api, project):
    assert api.get(f"/projects/{project.id}/session-errors").json()["errors"] == []


def test_it_lists_in_a_fixed_number_of_queries(api, project, make_event, django_assert_num_queries):
    for _ in range(25):
        make_event()
    api.get(f"/projects/{project.id}/session-errors")  # records the key's first use
    # The key (with its project), the errors (with the planner setting before and, in the
    # test's transaction, its reset after).
    with django_assert_num_queries(4):
        response = api.get(f"/projects/{project.id}/session-errors")
    assert len(response.json()["errors"]) == 20


def test_it_lists_one_sessions_errors_in_time_order(api, project, make_event):
    now = timezone.now()
    second = make_event(session_id="s-a", occurred_at=now)
    first = make_event(session_id="s-a", occurred_at=now - timedelta(seconds=10))
    make_event(session_id="s-a", kind=Event.WARNING, code="HIGH_JITTER")
    make_event(session_id="s-b")
    body = api.get(f"/projects/{project.id}/sessions/s-a/errors").json()
    assert body["session_id"] == "s-a"
    assert [e["id"] for e in body["errors"]] == [first.id, second.id]
    assert body["truncated"] is False


def test_it_lists_a_sessions_errors_in_a_fixed_number_of_queries(
    api, project, make_event, django_assert_num_queries
):
    for _ in range(10):
        make_event(session_id="s-a")
    api.get(f"/projects/{project.id}/sessions/s-a/errors")
    with django_assert_num_queries(2):
        response = api.get(f"/projects/{project.id}/sessions/s-a/errors")
    assert len(response.json()["errors"]) == 10


def test_it_returns_no_errors_for_a_session_with_only_warnings(api, project, make_event):
    make_event(session_id="calm", kind=Event.WARNING, code="HIGH_JITTER")
    response = api.get(f"/projects/{project.id}/sessions/calm/errors")
    assert response.status_code == 200
    assert response.json()["errors"] == []


def test_it_knows_a_session_from_its_row_alone(api, project):
    now = timezone.now()
    Session.objects.create(project=project, session_id="quiet", first_seen=now, last_seen=now)
    assert api.get(f"/projects/{project.id}/sessions/quiet/errors").json()["errors"] == []


def test_it_answers_404_for_an_unknown_session(api, project, make_event, other_project):
    make_event(project=other_project, session_id="theirs")
    for route in ("errors", "timeline"):
        response = api.get(f"/projects/{project.id}/sessions/theirs/{route}")
        error = assert_envelope(response, 404, "NOT_FOUND")
        assert error["message"] == "No such session"


def test_it_finds_sessions_whose_ids_contain_slashes_and_spaces(api, project, make_event):
    make_event(session_id="room/42 a")
    response = api.get(f"/projects/{project.id}/sessions/room%2F42%20a/errors")
    assert response.status_code == 200
    assert response.json()["errors"][0]["session_id"] == "room/42 a"


def test_it_gives_the_whole_timeline_in_order(api, project, make_event, django_assert_num_queries):
    now = timezone.now()
    end = make_event(
        session_id="s",
        kind=Event.TERMINATION,
        code="NORMAL_CLEARING",
        occurred_at=now,
        details={"termination": {"cause": "NORMAL_CLEARING"}},
    )
    warning = make_event(
        session_id="s",
        kind=Event.WARNING,
        code="HIGH_JITTER",
        occurred_at=now - timedelta(seconds=20),
        details={"metrics": {"mos": 2}},
    )
    error = make_event(session_id="s", occurred_at=now - timedelta(seconds=10))
    info = make_event(session_id="s", kind=Event.INFO, code="SESSION_IDLE_TIMEOUT",
                      occurred_at=now - timedelta(seconds=30))  # fmt: skip
    api.get(f"/projects/{project.id}/sessions/s/timeline")
    with django_assert_num_queries(2):
        body = api.get(f"/projects/{project.id}/sessions/s/timeline").json()
    assert [e["id"] for e in body["events"]] == [info.id, warning.id, error.id, end.id]
    assert [e["kind"] for e in body["events"]] == ["info", "warning", "error", "termination"]
    assert body["events"][1]["details"] == {"metrics": {"mos": 2}}


def test_it_cuts_a_runaway_session_and_says_so(api, project, make_event, monkeypatch):
    from errorsink.sessions import selectors

    monkeypatch.setattr(selectors, "SESSION_EVENTS_MAX", 3)
    for _ in range(4):
        make_event(session_id="loop")
    body = api.get(f"/projects/{project.id}/sessions/loop/errors").json()
    assert len(body["errors"]) == 3 and body["truncated"] is True


def test_it_cuts_a_timeline_where_the_dashboard_does(
    api, client, alice, project, make_event, monkeypatch
):
    from errorsink.sessions import selectors

    monkeypatch.setattr(selectors, "SESSION_EVENTS_MAX", 3)
    now = timezone.now()
    for i in range(5):
        make_event(session_id="loop", occurred_at=now - timedelta(seconds=i))
    body = api.get(f"/projects/{project.id}/sessions/loop/timeline").json()
    client.force_login(alice)
    page = client.get(reverse("session-timeline", args=[project.id, "loop"]))
    assert body["truncated"] is True and "timeline-cut" in page.content.decode()
    assert [e["id"] for e in body["events"]] == [e.pk for e in page.context["events"]]


def test_it_serves_the_code_catalog(api):
    from errorsink.catalog import all_codes

    body = api.get("/codes").json()
    assert body["count"] == len(all_codes()) == len(body["codes"])
    codes = {entry["code"] for entry in body["codes"]}
    assert {"AGENT_CHILD_CRASHED", "WEBRTC_CONNECT_TIMEOUT", "NORMAL_CLEARING"} <= codes


def test_it_gives_an_empty_timeline_for_a_session_known_only_by_its_row(api, project):
    now = timezone.now()
    Session.objects.create(project=project, session_id="quiet", first_seen=now, last_seen=now)
    body = api.get(f"/projects/{project.id}/sessions/quiet/timeline").json()
    assert body["events"] == [] and body["truncated"] is False
