"""The sessions page as alice (owner), bob (member) and charlie (outsider)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from errorsink.sessions.models import Session

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(project):
    start = timezone.now() - timedelta(hours=1)
    made = []
    for n in range(25):
        made.append(Session.objects.create(
            project=project, session_id=f"call-{n:02d}", build_id=f"v{n % 2}",
            first_seen=start + timedelta(minutes=n), last_seen=start + timedelta(minutes=n + 1),
            error_count=n % 3, warning_count=1, event_count=2, degraded=n % 5 == 0,
            end_cause="NORMAL_CLEARING" if n % 4 else "",
        ))  # fmt: skip
    return made


def _url(project, **params) -> str:
    url = reverse("session-list", args=[project.id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _shown(page: str) -> list[str]:
    return re.findall(r'title="(call-\d+)">', page)


def test_members_see_the_newest_sessions_linked_to_their_timelines(client, alice, bob, project,
                                                                     sessions):  # fmt: skip
    for user in (alice, bob):
        client.force_login(user)
        page = client.get(_url(project)).content.decode()
        assert _shown(page) == [f"call-{n:02d}" for n in range(24, 4, -1)]
        assert reverse("session-timeline", args=[project.id, "call-24"]) in page
        assert "Older sessions →" in page
        assert "Left out" not in page  # no complaint of a page size the URL did not give


def test_nobody_else_does(client, charlie, project, sessions):
    assert client.get(_url(project)).status_code == 302
    client.force_login(charlie)
    assert client.get(_url(project)).status_code == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "call-1"}, [f"call-{n}" for n in range(19, 9, -1)]),
        ({"degraded": "true"}, ["call-20", "call-15", "call-10", "call-05", "call-00"]),
        ({"has_errors": "false", "build_id": "v0"}, ["call-24", "call-18", "call-12", "call-06",
                                                      "call-00"]),
        ({"end_cause": "none", "degraded": "false"}, ["call-24", "call-16", "call-12", "call-08",
                                                      "call-04"]),
    ],
)  # fmt: skip
def test_it_filters_from_the_url(client, alice, project, sessions, params, expected):
    client.force_login(alice)
    assert _shown(client.get(_url(project, **params)).content.decode()) == expected


def test_older_pages_keep_the_filters(client, alice, project, sessions):
    client.force_login(alice)
    first = client.get(_url(project, build_id="v1", limit=5)).content.decode()
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(older).content.decode()
    assert _shown(first) == ["call-23", "call-21", "call-19", "call-17", "call-15"]
    assert _shown(second) == ["call-13", "call-11", "call-09", "call-07", "call-05"]
    assert "Newest sessions" in second


def test_a_bad_filter_is_said_and_left_out(client, alice, project, sessions):
    client.force_login(alice)
    page = client.get(_url(project, degraded="maybe", cursor="zz", q="call-2")).content.decode()
    assert "Left out degraded:" in page and "Left out cursor:" in page
    assert _shown(page) == ["call-24", "call-23", "call-22", "call-21", "call-20"]


def test_an_empty_match_says_so_and_escapes_ids(client, alice, project):
    client.force_login(alice)
    page = client.get(_url(project, q="nothing")).content.decode()
    assert "No sessions match these filters." in page
    Session.objects.create(project=project, session_id="<script>x</script>",
                           first_seen=timezone.now(), last_seen=timezone.now())  # fmt: skip
    page = client.get(_url(project)).content.decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_the_page_costs_a_fixed_number_of_queries(client, alice, project, sessions,
                                                  django_assert_num_queries):  # fmt: skip
    client.force_login(alice)
    with django_assert_num_queries(4):  # session, user, membership, sessions
        client.get(_url(project))
