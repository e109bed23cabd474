"""The hot reads use their indexes on a table of 400,000 events and 400,000 sessions (checked
with EXPLAIN): big enough that a scan or a sort would be chosen only where an index is missing."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from errorsink.ingest.batch import batch_rows
from errorsink.ingest.persist import events_persist
from errorsink.issues.models import Issue
from errorsink.issues.selectors import errors_page, issue_events_page
from errorsink.projects.retention import events_prune_batch
from errorsink.projects.services import project_create
from errorsink.search import ErrorSearch, SessionSearch
from errorsink.sessions import selectors
from errorsink.sessions.listing import sessions_page
from errorsink.sessions.models import Event
from errorsink.sessions.partitions import partition_days, partition_make, partition_name

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 400_000
SESSIONS = 8_000  # a project

# 50 projects, SESSIONS sessions; kinds in the bench's proportions; a month of occurred_at.
_FILL = """
INSERT INTO errorsink_event (project_id, event_id, session_id, kind, code, name, message,
    occurred_at, received_at, source, severity, recoverable, build_id, stack, details,
    item_type, raw, fingerprint)
SELECT p.ids[1 + n %% 50], 'e' || n, 's' || (n %% @sessions@),
       (ARRAY['error', 'warning', 'warning', 'termination', 'info'])[1 + n %% 5],
       'AGENT_CHILD_CRASHED', '', 'message ' || n || ' word' || (n %% 1000),
       now() - (n %% 2592000) * interval '1 second', now() - (n %% 2592000) * interval '1 second',
       'agent', 'high', false, '', '', '{}'::jsonb, 'session_error', '{}'::jsonb,
       CASE WHEN n %% 5 = 0 THEN md5('issue' || (n %% 997))::uuid END
FROM generate_series(1, %s) AS n, (SELECT array_agg(id) AS ids FROM errorsink_project) AS p
"""

# Their SESSIONS sessions a project, started over the month.
_FILL_SESSIONS = """
INSERT INTO errorsink_session (project_id, session_id, build_id, first_seen, last_seen,
    error_count, warning_count, event_count, end_cause, quality_tags, degraded)
SELECT p.id, 's' || s, '', now() - s * interval '2 minutes', now() - s * interval '1 minute',
       s % 3, 0, 1, '', '{}', s % 7 = 0
FROM errorsink_project AS p, generate_series(1, @sessions@) AS s
"""


# The hourly figures of the same 50 projects over the month, three builds an hour. Filled and
# analysed, not left empty: an empty table that autovacuum happened to analyse after an earlier
# test (any that rolls events up) is rightly read by a sequential scan.
_FILL_ROLLUPS = """
INSERT INTO errorsink_figure_sessions (project_id, span, bucket, build_id, events, errors,
    warnings, active, degraded, active_count, degraded_count)
SELECT p.id, 'h', date_trunc('hour', now()) - h * interval '1 hour', 'b' || b, 3, 1, 1, '', '',
       1, 0
FROM errorsink_project AS p, generate_series(0, 719) AS h, generate_series(1, 3) AS b
"""


def _fill_sql() -> str:
    return _FILL.replace("@sessions@", str(SESSIONS))


@pytest.fixture
def many_events():
    projects = [project_create(name=f"p{n}") for n in range(50)]
    with connection.cursor() as cursor:
        cursor.execute(_fill_sql(), [ROWS])
        cursor.execute(_FILL_ROLLUPS)
        cursor.execute(_FILL_SESSIONS.replace("@sessions@", str(SESSIONS)))
        cursor.execute("ANALYZE errorsink_event")
        cursor.execute("ANALYZE errorsink_figure_sessions")
        cursor.execute("ANALYZE errorsink_session")
    return projects[7]


def _seq_scans(text: str) -> list[str]:
    """The plan's sequential scans, but of empty partitions (the days made ahead), which cost
    nothing and which the planner rightly scans rather than reading an index."""
    return [line for line in text.splitlines()
            if "Seq Scan" in line and "cost=0.00..0.00 rows=1 " not in line]  # fmt: skip


def plan(queryset) -> str:
    return queryset.explain()


def plan_of_read(read) -> str:
    """The plan of the last query a selector ran, exactly as it sent it (without the planner
    option a word search sets for its last query: the plan here is PostgreSQL's own choice)."""
    with CaptureQueriesContext(connection) as queries:
        read()
    # The last read: a search may set a planner option and commit around it.
    [*_, last] = (q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT"))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + last)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.slow
def test_it_serves_the_hot_reads_from_their_indexes_on_hundreds_of_thousands_of_rows(many_events):
    # Filled once (about 15 s): the three reads are checked against the same table.
    latest = Event.objects.filter(project=many_events, kind="error").order_by(
        "-received_at", "-id"
    )[:20]
    text = plan(latest)
    assert "event_latest_errors" in text and "Sort  (" not in text, text

    timeline = Event.objects.filter(project=many_events, session_id="s7").order_by("occurred_at")
    text = plan(timeline)
    assert "event_timeline" in text and not _seq_scans(text), text

    # And the reads the dashboard and the API really run.
    text = plan_of_read(
        lambda: errors_page(project_id=many_events.id, search=ErrorSearch.model_validate({}))
    )
    assert "event_latest_errors" in text and "Sort  (" not in text, text
    text = plan_of_read(
        lambda: selectors.session_events(project_id=many_events.id, session_id="s7")
    )
    assert "event_timeline" in text and not _seq_scans(text), text
    # The projects list reads the hourly rollups, by their key, never the event table.
    text = plan_of_read(lambda: selectors.projects_activity_24h(project_ids=[many_events.id]))
    # By their key: an index scan or a bitmap scan of it, whichever the planner prefers.
    assert re.search(r"Index Scan (using|on) errorsink_figure_sessions_pkey", text), text
    assert not _seq_scans(text), text
    assert "errorsink_event" not in text, text
    _assert_triage_reads_use_their_indexes(many_events)


def _assert_triage_reads_use_their_indexes(project) -> None:
    """docs/issues.md's lists, as the API and the pages run them."""
    search = ErrorSearch.model_validate
    text = plan_of_read(lambda: errors_page(project_id=project.id, search=search({})))
    assert "event_latest_errors" in text and "Sort  (" not in text, text
    text = plan_of_read(lambda: errors_page(project_id=project.id, search=search({"q": "word7"})))
    assert "event_message_search" in text and not _seq_scans(text), text
    issue = Issue(project=project, fingerprint=uuid.UUID(hashlib.md5(b"issue7").hexdigest()))
    text = plan_of_read(lambda: issue_events_page(issue=issue, cursor="", limit=20))
    assert "event_issue_newest" in text and not _seq_scans(text), text
    sessions = SessionSearch.model_validate
    text = plan_of_read(lambda: sessions_page(project_id=project.id, search=sessions({})))
    assert "session_started" in text and "Sort" not in text, text
    # A rare prefix by its own index (a common one is found soon enough walking the newest).
    rare = sessions({"q": "s1999"})
    text = plan_of_read(lambda: sessions_page(project_id=project.id, search=rare))
    assert "session_id_prefix" in text and not _seq_scans(text), text


@pytest.fixture
def old_events():
    """200,000 events of 50 projects, in their days' partitions."""
    today = timezone.now().date()
    days = [today - timedelta(days=n) for n in range(31)]
    made = [day for day in days if day not in partition_days()]
    for day in made:
        partition_make(day)
    projects = [project_create(name=f"p{n}") for n in range(50)]
    with connection.cursor() as cursor:
        cursor.execute(_fill_sql(), [200_000])
        cursor.execute("ANALYZE errorsink_event")
    yield projects[7], days[1]  # the fill spans 200,000 seconds back: yesterday is full
    with connection.cursor() as cursor:  # the flush empties them; they would stay, though
        cursor.execute(f"DROP TABLE {', '.join(partition_name(day) for day in made)}")


@pytest.mark.slow
def test_it_prunes_a_projects_rows_of_a_day_along_an_index_without_a_scan(old_events):
    project, day = old_events
    with CaptureQueriesContext(connection) as queries:
        events_prune_batch(project_id=project.pk, before=None, through=10**12, limit=5000,
                           table=partition_name(day))  # fmt: skip
    [delete] = [q["sql"] for q in queries.captured_queries if "DELETE FROM" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + delete)
        text = "\n".join(row[0] for row in cursor.fetchall())
    # The project's rows of that day from an index of the day's partition, each then by its
    # address: no scan of the partition, no other partition read.
    assert not _seq_scans(text) and "errorsink_event_default" not in text, text
    pattern = rf"Index (Only )?Scan (using|on) {partition_name(day)}_event_(timeline|unique) "
    assert re.search(pattern, text), text
    assert "Tid Scan" in text, text


def test_a_sessions_timeline_opens_only_the_days_it_spans(project):
    """Two sessions, today and tomorrow (whose partition is made ahead): reading one runs the
    other day's partition not at all (pruned at run time by the session's first and last)."""
    now = timezone.now()
    for session, moment in (("today", now), ("tomorrow", now + timedelta(days=1))):
        items = [orjson.dumps({"type": "session_warning", "project_id": str(project.id),
                               "session_id": session, "code": "HIGH_JITTER",
                               "event_id": f"{session}{n}", "occurred_at": moment.isoformat()})
                 for n in range(3)]  # fmt: skip
        events_persist(batch_rows(items, received_at=now).rows)
    with CaptureQueriesContext(connection) as queries:
        timeline = selectors.session_events(project_id=project.id, session_id="today")
    assert [event.event_id for event in timeline.events] == ["today0", "today1", "today2"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + queries.captured_queries[-1]["sql"])
        text = "\n".join(row[0] for row in cursor.fetchall())
    tomorrow = partition_name((now + timedelta(days=1)).date())
    scans = [line for line in text.splitlines() if f" on {tomorrow} " in line]
    assert scans and all("(never executed)" in line for line in scans), text
    today = partition_name(now.date())
    assert any(f" on {today} " in line and "never executed" not in line
               for line in text.splitlines()), text  # fmt: skip
