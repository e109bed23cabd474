"""Errors stored before issues existed join their issues exactly as ingest would have put them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from errorsink.issues.backfill import issues_backfill
from errorsink.issues.models import Issue
from errorsink.sessions.models import Event
from tests.errorsink.issues.test_ingest import _assert_counters_equal_recount
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db(transaction=True)


def _old_error(project, n: int, **fields) -> Event:
    """A row as the worker stored it before issues: no fingerprint, no issue."""
    now = timezone.now()
    values = dict(
        event_id=f"old-{n}", session_id=f"s{n % 4}", kind=Event.ERROR, code="AGENT_HANDLER_FAILED",
        message=f"Handler failed after {n} ms", occurred_at=now - timedelta(hours=n % 5),
        received_at=now, source="agent", severity="high", build_id=f"b{n % 2}",
        item_type="session_error", raw={},
    )  # fmt: skip
    values.update(fields)
    return Event.objects.create(project=project, **values)


def test_it_groups_earlier_errors_as_ingest_would_and_only_once(project, monkeypatch):
    monkeypatch.setattr("errorsink.issues.backfill.BATCH_SIZE", 7)  # several batches
    for n in range(20):
        _old_error(project, n)
    _old_error(project, 99, raw={"fingerprint": ["db", "pool"]})
    _old_error(project, 98, raw={"fingerprint": [1, 2]})  # never valid: the default applies
    _old_error(project, 97, kind=Event.WARNING, code="HIGH_JITTER")
    # Meanwhile ingest stores new errors of the same issue.
    items_store([error_item(project.id, message="Handler failed after 5 ms") for _ in range(3)])

    result = issues_backfill()
    assert (result.ran, result.errors, result.finished) == (True, 22, True)
    assert not Event.objects.filter(kind=Event.ERROR, fingerprint__isnull=True).exists()
    assert Event.objects.get(event_id="old-97").fingerprint is None  # warnings have no issue
    handler = Issue.objects.get(fingerprint_parts=[
        "code: AGENT_HANDLER_FAILED", "message: Handler failed after <num> ms"])  # fmt: skip
    assert handler.event_count == 21 + 3
    assert Issue.objects.get(fingerprint_parts=["custom: db", "custom: pool"]).event_count == 1
    _assert_counters_equal_recount(project.id)

    again = issues_backfill()
    assert (again.errors, again.finished) == (0, True)
    _assert_counters_equal_recount(project.id)


def test_a_run_stops_at_its_budget_and_the_next_goes_on(project, monkeypatch):
    monkeypatch.setattr("errorsink.issues.backfill.BATCH_SIZE", 5)
    for n in range(12):
        _old_error(project, n)
    first = issues_backfill(budget_seconds=0.000001)
    assert first.errors == 5 and not first.finished
    rest = issues_backfill()
    assert rest.errors == 7 and rest.finished
    _assert_counters_equal_recount(project.id)
