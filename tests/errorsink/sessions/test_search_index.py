"""The message search index's pending list is merged by the worker's tidy, not by an insert."""

from __future__ import annotations

import pytest
from django.db import connection

from errorsink.projects.services import project_create
from errorsink.sessions.search_index import SEARCH_INDEX, search_index_tidy

pytestmark = pytest.mark.django_db(transaction=True)

_ERRORS = """
INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
    occurred_at, received_at, source, severity, recoverable, build_id, stack, details,
    item_type, raw)
SELECT %s, 'e' || n, 's', 'error', 'AGENT_CHILD_CRASHED', '', 'tool timeout number' || n,
       now(), now(), 'agent', 'high', false, '', '', '{}'::jsonb, 'session_error', '{}'::jsonb
FROM generate_series(1, %s) AS n
"""


def _errors_insert(project, count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_ERRORS, [project.id, count])


def _found(project, word: str) -> int:
    from errorsink.issues.selectors import errors_page
    from errorsink.search import ErrorSearch

    return len(errors_page(project_id=project.id, search=ErrorSearch(q=word)).items)


def test_the_index_keeps_a_pending_list_the_tidy_merges(django_user_model):
    project = project_create(name="tidy", owner=django_user_model.objects.create_user("o"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [SEARCH_INDEX])
        # The pending list stays on: writing the index entry by entry costs inserts twice as
        # much (errorsink/sessions/search_index.py).
        assert "fastupdate=off" not in (cursor.fetchone()[0] or [])
    _errors_insert(project, 300)
    assert search_index_tidy() > 0  # the inserts went to the pending list
    assert search_index_tidy() == 0  # and it is empty once merged
    assert _found(project, "number17") == 1  # every word still found, from the index proper
    assert _found(project, "timeout") > 0
