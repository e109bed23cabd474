"""Every list, search and timeline route, page and API alike, against query strings made to
break them: any parameter of theirs (and others) with NULs, huge numbers, odd Unicode, dates
out of range, values repeated. Refused or answered, never a 500; a NUL anywhere in the address,
on a page, the API or a socket, is a 400 or a refused handshake."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errorsink.issues.models import Issue
from errorsink.projects.api_keys import api_key_create
from tests.dashboard.test_consumers import _connect, run
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db

PARAMS = ["q", "code", "build_id", "since", "until", "limit", "source", "ctx", "cursor",
          "status", "sort", "end_cause", "degraded", "has_errors", "window", "from", "paged",
          "session_id", "quality", "rollups", "before", "page"]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "-1", "0", "1e308", "9" * 40, "NaN", "true", "", " ",
                     "2026-13-45T99:99:99Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                     "%", "%00", "../..", "<script>", "s\u202e", "\ud7ff", "𝕏" * 50]),
)  # fmt: skip
QUERIES = st.lists(st.tuples(st.one_of(st.sampled_from(PARAMS), st.text(max_size=10)), VALUES),
                   max_size=6)  # fmt: skip


def api_client(project) -> Client:
    _, key = api_key_create(project=project, scopes="errors:read,settings:read", name="fuzz")
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def routes(project, alice) -> dict[str, tuple[Client, str]]:
    """The list and search routes of one project, each with a client allowed to read it."""
    items_store([error_item(project.id, session_id="s1")])
    issue = Issue.objects.get(project=project)
    page = Client()
    page.force_login(alice)
    api = api_client(project)
    pages = {name: reverse(name, args=args) for name, args in [
        ("projects", []), ("project", [project.id]),
        ("session-list", [project.id]), ("issue", [project.id, issue.id]),
        ("session-timeline", [project.id, "s1"]), ("alert-rules", [project.id]),
        ("dead-letters", [project.id])]}  # fmt: skip
    base = f"/api/v1/projects/{project.id}"
    apis = {"api " + path: f"{base}{path}" for path in [
        "/session-errors", "/sessions", "/sessions/s1/errors", "/sessions/s1/timeline",
        "/quality", "/issues", f"/issues/{issue.id}/events", "/alert-rules"]}  # fmt: skip
    return {**{n: (page, u) for n, u in pages.items()}, **{n: (api, u) for n, u in apis.items()}}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERIES)
def test_no_query_string_makes_a_list_route_fail(routes, query):
    encoded = urlencode(query)
    for name, (client, url) in routes.items():
        response = client.get(f"{url}?{encoded}")
        assert response.status_code < 500, (name, encoded, response.content[:300])


@pytest.mark.parametrize(
    "path",
    [
        "/projects/{p}/sessions/%00/",
        "/projects/{p}/sessions/a%00b/",
        "/projects/{p}/?q=%00",
        "/projects/{p}/sessions/?q=x%00",
        "/api/v1/projects/{p}/sessions/%00/timeline",
        "/api/v1/projects/{p}/sessions/%00/errors",
        "/api/v1/projects/{p}/session-errors?code=%00",
    ],
)
def test_a_nul_in_the_address_is_a_400_that_says_so(project, alice, path):
    client = api_client(project)
    client.force_login(alice)
    response = client.get(path.format(p=project.id))
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.django_db(transaction=True)
@run
async def test_a_socket_asking_for_a_nul_is_refused_not_crashed(alice, project):
    for path in (f"/ws/projects/{project.id}/sessions/a\x00b/",
                 f"/ws/projects/{project.id}/?code=%00"):  # fmt: skip
        communicator, connected = await _connect(alice, path)
        assert not connected
        await communicator.disconnect()
