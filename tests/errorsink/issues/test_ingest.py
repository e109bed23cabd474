"""Issues as the ingest batch keeps them (docs/issues.md), against the real PostgreSQL: every
counter equals a recount from the stored events, however the events were batched or re-sent."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errorsink.ingest.batch import batch_rows
from errorsink.ingest.issues import STORED_PAIRS, StoredPairs
from errorsink.ingest.persist import events_persist
from errorsink.issues.models import Issue, IssueHour, IssueSession
from errorsink.sessions.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
# Three errors, each in many spellings that differ only in numbers, UUIDs and quoted values.
TEMPLATES = [
    ("AGENT_HANDLER_FAILED", "Handler failed after {n} ms for call {uuid}"),
    ("TOOL_CALL_FAILED", "Tool '{word}' timed out after {n}s (attempt {m})"),
    ("AGENT_HANDLER_FAILED", 'Could not read "{word}" from {uuid} at offset {n}'),
]


def _error(project_id, n: int, template: int, **fields) -> dict:
    code, message = TEMPLATES[template]
    return {
        "type": "session_error", "project_id": str(project_id), "event_id": f"e{n}",
        "session_id": f"s{n % 30}", "code": code, "build_id": f"b{n % 4}",
        "message": message.format(n=n * 7, m=n % 5, uuid=uuid.uuid4(), word=f"w{n}x"),
        "occurred_at": (T0 + timedelta(minutes=n)).isoformat(), **fields,
    }  # fmt: skip


def _store(items: list[dict]) -> None:
    rows = batch_rows([orjson.dumps(i) for i in items], received_at=datetime.now(UTC)).rows
    events_persist(rows)


def _recount(project_id) -> dict:
    """Every issue's figures, counted again from its stored events."""
    figures: dict = {}
    for event in Event.objects.filter(project_id=project_id, kind="error"):
        entry = figures.setdefault(event.fingerprint, {"count": 0, "sessions": set(),
                                   "builds": set(), "seen": [], "hours": Counter()})  # fmt: skip
        entry["count"] += 1
        # Errors without a session or a build add none.
        entry["sessions"] |= {event.session_id} - {""}
        entry["builds"] |= {event.build_id} - {""}
        entry["seen"].append(event.occurred_at)
        entry["hours"][event.occurred_at.replace(minute=0, second=0, microsecond=0)] += 1
    return figures


def _assert_counters_equal_recount(project_id) -> None:
    recount = _recount(project_id)
    issues = {issue.fingerprint: issue for issue in Issue.objects.filter(project_id=project_id)}
    assert set(issues) == set(recount)
    for fingerprint, issue in issues.items():
        expected = recount[fingerprint]
        assert issue.event_count == expected["count"]
        assert issue.session_count == len(expected["sessions"])
        assert set(issue.builds) == expected["builds"]
        assert (issue.first_seen, issue.last_seen) == (min(expected["seen"]), max(expected["seen"]))
        hours = dict(IssueHour.objects.filter(issue=issue).values_list("hour", "count"))
        assert hours == dict(expected["hours"])


def test_300_errors_of_3_fingerprints_make_exactly_3_issues(project):
    items = [_error(project.id, n, n % 3) for n in range(300)]
    for start in range(0, 300, 37):  # batches that cut across the groups
        _store(items[start : start + 37])
    issues = Issue.objects.filter(project=project).order_by("title")
    assert issues.count() == 3
    assert sorted(i.event_count for i in issues) == [100, 100, 100]
    # n % 3 and n % 30 : each fingerprint meets exactly 10 of the 30 sessions.
    assert sorted(i.session_count for i in issues) == [10, 10, 10]
    assert {i.code for i in issues} == {"AGENT_HANDLER_FAILED", "TOOL_CALL_FAILED"}
    tool = issues.get(code="TOOL_CALL_FAILED")
    assert tool.fingerprint_parts == [
        "code: TOOL_CALL_FAILED",
        "message: Tool <quoted> timed out after <num>s (attempt <num>)",
    ]
    assert tool.title.startswith("Tool 'w1x' timed out")  # its first event's own words
    assert tool.builds == ["b0", "b1", "b2", "b3"]
    _assert_counters_equal_recount(project.id)


def test_a_re_sent_batch_changes_no_counter(project):
    items = [_error(project.id, n, n % 3) for n in range(60)]
    _store(items[:40])
    _store(items[20:60])  # half of it stored already: the ON CONFLICT path
    _store(items)
    assert sum(Issue.objects.values_list("event_count", flat=True)) == 60
    _assert_counters_equal_recount(project.id)


def test_a_new_event_on_a_resolved_issue_reopens_it_as_regressed(project):
    _store([_error(project.id, 0, 0)])
    Issue.objects.update(status="resolved")
    _store([_error(project.id, 1, 1)])  # another issue: the resolved one stays resolved
    assert Issue.objects.get(code="AGENT_HANDLER_FAILED").status == "resolved"
    _store([_error(project.id, 2, 0)])
    issue = Issue.objects.get(code="AGENT_HANDLER_FAILED")
    assert (issue.status, issue.regressed, issue.event_count) == ("unresolved", True, 2)


def test_an_ignored_issue_stays_ignored(project):
    _store([_error(project.id, 0, 0)])
    Issue.objects.update(status="ignored")
    _store([_error(project.id, 3, 0)])
    issue = Issue.objects.get()
    assert (issue.status, issue.regressed, issue.event_count) == ("ignored", False, 2)


def test_an_items_own_fingerprint_groups_across_codes(project):
    _store([
        _error(project.id, 0, 0, fingerprint=["database", "pool"]),
        _error(project.id, 1, 1, fingerprint=["database", "pool"]),
        _error(project.id, 2, 1),
    ])  # fmt: skip
    grouped = Issue.objects.get(event_count=2)
    assert grouped.fingerprint_parts == ["custom: database", "custom: pool"]
    assert Issue.objects.count() == 2


def test_nul_in_a_code_or_custom_fingerprint_is_kept_as_the_event_keeps_it(project):
    # Found by `make faults`: the API accepted these, and the issue's jsonb parts refused the
    # NUL, which dead-lettered the event.
    _store([_error(project.id, 0, 0, code="a\x00b"),
            _error(project.id, 1, 1, fingerprint=["pool\x00", "{{ default }}"])])  # fmt: skip
    assert Event.objects.filter(project_id=project.id).count() == 2
    parts = sorted(part for issue in Issue.objects.all() for part in issue.fingerprint_parts)
    assert "code: a\ufffdb" in parts and "custom: pool\ufffd" in parts
    assert Event.objects.filter(code="a\ufffdb").exists()
    _assert_counters_equal_recount(project.id)


def test_a_fingerprint_that_is_not_strings_is_refused_with_its_reason(project):
    batch = batch_rows([orjson.dumps(_error(project.id, 0, 0, fingerprint=["a", 2]))],
                       received_at=datetime.now(UTC))  # fmt: skip
    assert batch.rows == []
    assert batch.rejected[0].reason == "field 'fingerprint.1' must be a string, got number"


def test_warnings_and_terminations_make_no_issue(project):
    _store([{"type": "session_warning", "project_id": str(project.id), "session_id": "s",
             "code": "HIGH_JITTER", "event_id": "w"},
            {"type": "session_end", "project_id": str(project.id), "session_id": "s",
             "cause": "NORMAL_CLEARING", "event_id": "t"}])  # fmt: skip
    assert Event.objects.count() == 2
    assert not Issue.objects.exists()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(st.tuples(st.integers(0, 79), st.integers(0, 2)), min_size=1, max_size=120),
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=8),
)
def test_counters_always_equal_a_recount(project, plan, cuts):
    Event.objects.filter(project=project).delete()
    Issue.objects.filter(project=project).delete()
    # The same event number may come twice (a re-delivery), in the same batch or a later one.
    items = [_error(project.id, n, template) for n, template in plan]
    start = 0
    for cut in cuts * 20:
        if start >= len(items):
            break
        _store(items[start : start + cut])
        start += cut
    _assert_counters_equal_recount(project.id)


def _issue_session_ids(issue: Issue) -> set[str]:
    return set(IssueSession.objects.filter(issue=issue).values_list("session_id", flat=True))


def test_pairs_stored_before_are_sent_apart_and_still_counted_once(project):
    _store([_error(project.id, n, 0) for n in range(0, 10)])  # sessions s0 … s9
    issue = Issue.objects.get(project=project)
    group = (str(project.id), issue.fingerprint.hex)
    assert STORED_PAIRS.split(group, {"s1", "s10"}) == (issue.id, ["s10"], ["s1"])
    _store([_error(project.id, n, 0) for n in range(5, 15)])  # s5 … s9 again, s10 … s14 new
    issue.refresh_from_db()
    assert issue.session_count == 15 == len(_issue_session_ids(issue))
    _assert_counters_equal_recount(project.id)


def test_a_remembered_issue_made_again_has_its_sessions_written_again(project):
    _store([_error(project.id, n, 0) for n in range(0, 10)])
    old = Issue.objects.get(project=project)
    Event.objects.filter(project=project).delete()
    old.delete()  # its (issue, session) rows go with it; this process still remembers them
    _store([_error(project.id, n, 0) for n in range(30, 40)])  # the same ten sessions
    new = Issue.objects.get(project=project)
    assert new.id != old.id
    assert new.session_count == 10 == len(_issue_session_ids(new))
    _assert_counters_equal_recount(project.id)


def test_a_batch_rolled_back_leaves_nothing_remembered(project):
    rows = batch_rows([orjson.dumps(_error(project.id, 1, 0))], received_at=datetime.now(UTC)).rows
    with pytest.raises(RuntimeError), transaction.atomic():
        events_persist(rows)
        raise RuntimeError("the batch fails after its issue statement")
    assert not Issue.objects.exists()
    assert (str(project.id), rows[0].fingerprint) not in STORED_PAIRS.issue_ids


def test_the_memory_forgets_all_when_full():
    pairs = StoredPairs(limit=3)
    pairs.remember({("p", "f"): 1}, {("p", "f"): ["a", "b", "c", "d"]})
    assert pairs.split(("p", "f"), {"a", "e"}) == (1, ["e"], ["a"])
    pairs.remember({("p", "g"): 2}, {("p", "g"): ["x"]})  # over the limit: forgets, then keeps
    assert pairs.split(("p", "f"), {"a"}) == (None, ["a"], [])
    assert pairs.split(("p", "g"), {"x"}) == (2, [], ["x"])
