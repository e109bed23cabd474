"""A session's timeline link leads to that session, whatever its id (issue 14): ids with
slashes, dots and percent signs included."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from dashboard.converters import SessionIdConverter


@pytest.mark.django_db
@pytest.mark.parametrize("session_id", ["a/../b", "..", ".", "50%2F", "call/1", "x%25y", "é ü"])
def test_the_timeline_link_opens_that_sessions_timeline(client, alice, project, session_id):
    from tests.ingest_helpers import error_item, items_store

    items_store([error_item(project.id, session_id=session_id, message="boom")])
    client.force_login(alice)
    url = reverse("session-timeline", args=[project.id, session_id])
    assert "/../" not in url and not url.endswith("/../") and not url.endswith("/./")
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["session_id"] == session_id


@pytest.mark.pure
@given(st.text(min_size=1, max_size=50))
def test_the_converter_gives_back_every_id(session_id):
    converter = SessionIdConverter()
    assert converter.to_python(converter.to_url(session_id)) == session_id
