"""The per-process memory of session builds (errorsink/ingest/builds.py): bounded, and asked of
PostgreSQL only for what it does not hold."""

from __future__ import annotations

import pytest
from django.utils import timezone

from errorsink.ingest.builds import SessionBuilds
from errorsink.sessions.models import Session

pytestmark = pytest.mark.django_db


def _session(project, session_id: str, build_id: str) -> None:
    now = timezone.now()
    Session.objects.create(project=project, session_id=session_id, build_id=build_id,
                           first_seen=now, last_seen=now)  # fmt: skip


def test_the_batch_s_own_builds_win_and_unknown_sessions_are_read(
    project, django_assert_num_queries
):
    _session(project, "stored", "v1")
    memory = SessionBuilds()
    key = (str(project.id), "stored")
    with django_assert_num_queries(1):
        assert memory.of({key}, {}) == {key: "v1"}
    with django_assert_num_queries(0):
        assert memory.of({key}, {}) == {key: "v1"}
        assert memory.of({key}, {key: "v2"}) == {key: "v2"}  # what the batch says wins
        # ...but is remembered only once the batch is stored (ingest does it on commit).
        assert memory.of({key}, {}) == {key: "v1"}


def test_past_its_age_it_reads_again(project, django_assert_num_queries):
    _session(project, "stored", "v1")
    memory = SessionBuilds(max_age=0.0)  # trusted for no time at all
    key = (str(project.id), "stored")
    memory.of({key}, {})
    Session.objects.filter(session_id="stored").update(build_id="v2")
    with django_assert_num_queries(1):
        assert memory.of({key}, {}) == {key: "v2"}


def test_past_its_limit_it_starts_again_and_reads_once_more(project, django_assert_num_queries):
    _session(project, "s0", "v0")
    memory = SessionBuilds(limit=2)
    first = (str(project.id), "s0")
    memory.of({first}, {})
    memory.remember({(str(project.id), "s1"): "v1", (str(project.id), "s2"): "v2"})
    with django_assert_num_queries(1):
        assert memory.of({first}, {}) == {first: "v0"}
