"""Reading and triaging issues (docs/issues.md): lists filtered and paged by keyset, one issue's
events and sessions, its hourly trend, and the status a person gives it."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from errorsink.issues.models import STATUSES, Issue, IssueHour
from errorsink.paging import Page, page_of
from errorsink.search import (
    SORT_COLUMNS,
    ErrorSearch,
    IssueSearch,
    code_prefix_filter,
    cursor_values,
    keyset_before,
    words_filter,
    words_page,
)
from errorsink.sessions.models import Event, Session
from errorsink.sessions.partitions import merged_in_order

TREND_HOURS = 24
ISSUE_SESSIONS_SHOWN = 20
# An issue's newest errors read to find the sessions it was last seen in.
SESSIONS_SCANNED = 500


def issues_page(*, project_id: object, search: IssueSearch) -> Page[Issue]:
    issues = Issue.objects.filter(project_id=project_id)
    if search.status != "all":
        issues = issues.filter(status=search.status)
    issues = code_prefix_filter(issues, search.code)
    if search.build_id:
        issues = issues.filter(builds__contains=[search.build_id])
    if search.since:
        issues = issues.filter(last_seen__gte=search.since)
    if search.until:
        issues = issues.filter(first_seen__lte=search.until)
    column = SORT_COLUMNS[search.sort]
    issues = issues.filter(keyset_before(column, search.after)).order_by(f"-{column}", "-id")
    rows = words_page(issues, "title", search.words(), search.limit)
    return page_of(rows, search.limit, lambda issue: (getattr(issue, column), issue.id))


BIGINT_MAX = 2**63 - 1


def issue_get(*, project_id: object, issue_id: int) -> Issue | None:
    if not 0 < issue_id <= BIGINT_MAX:  # no such id, rather than a database error
        return None
    return Issue.objects.filter(project_id=project_id, id=issue_id).first()


def issue_status_set(*, issue: Issue, status: str) -> Issue:
    """Someone's decision: it also clears "regressed", which told them to look again."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    now = timezone.now()
    Issue.objects.filter(id=issue.id).update(status=status, regressed=False, status_changed_at=now)
    issue.status, issue.regressed, issue.status_changed_at = status, False, now
    return issue


def issue_events_page(*, issue: Issue, cursor: str, limit: int) -> Page[Event]:
    """The issue's events, newest first by id, which is arrival order (ids are drawn as
    batches are stored): index ``event_issue``, kept narrow because ingest writes every error
    into it at a random place. ValueError when the cursor is not one this list handed out."""
    events = Event.objects.defer("raw").filter(kind=Event.ERROR, fingerprint=issue.fingerprint)
    # Another project may share the fingerprint (the same error text): the index narrows by
    # fingerprint, this by project.
    events = events.filter(project_id=issue.project_id)
    after = issue_events_after(cursor)
    if after is not None:
        events = events.filter(id__lt=after)
    with merged_in_order():  # a burst after the last ANALYZE must not be read whole
        rows = list(events.order_by("-id")[: limit + 1])
    return page_of(rows, limit, lambda event: (event.id,))


def issue_events_after(cursor: str) -> int | None:
    """The id an issue's events continue below; ValueError for a cursor it did not hand out."""
    values = cursor_values(cursor, int)
    return None if values is None else values[0]


def issue_sessions(*, issue: Issue, limit: int = ISSUE_SESSIONS_SHOWN) -> list[Session]:
    """The sessions with the issue's newest errors, most recent first: read from the issue's
    newest events (index ``event_issue_newest``), so an issue seen in 100,000 sessions costs
    what one seen in ten does."""
    newest = Event.objects.filter(
        kind=Event.ERROR, fingerprint=issue.fingerprint, project_id=issue.project_id
    ).exclude(session_id="")
    recent = newest.order_by("-id").values_list("session_id", flat=True)[:SESSIONS_SCANNED]
    with merged_in_order():
        session_ids = list(dict.fromkeys(recent))[:limit]
    found = {s.session_id: s for s in Session.objects.filter(
        project_id=issue.project_id, session_id__in=session_ids)}  # fmt: skip
    return [found[session_id] for session_id in session_ids if session_id in found]


def issue_trends(
    *, issue_ids: list[int], hours: int = TREND_HOURS, now: datetime | None = None
) -> dict[int, list[int]]:
    """Events per hour of each issue over the last ``hours`` clock hours, oldest first: one
    query for the whole list."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    trends = {issue_id: [0] * hours for issue_id in issue_ids}
    if not issue_ids:
        return trends
    rows = IssueHour.objects.filter(issue_id__in=issue_ids, hour__gte=start, hour__lt=end)
    for issue_id, hour, count in rows.values_list("issue_id", "hour", "count"):
        trends[issue_id][int((hour - start).total_seconds() // 3600)] += count
    return trends


def _errors_matching(project_id: object, search: ErrorSearch) -> QuerySet[Event]:
    """Every filter but the words (see ``words_page``)."""
    events = Event.objects.defer("raw").filter(project_id=project_id, kind=Event.ERROR)
    return _error_filters(code_prefix_filter(events, search.code), search)


def errors_page(*, project_id: object, search: ErrorSearch) -> Page[Event]:
    """A project's errors, newest arrival first (index ``event_latest_errors``; words through
    ``event_message_search``). The time range is of arrival, the order the list is in."""
    events = _errors_matching(project_id, search)
    events = events.filter(keyset_before("received_at", search.after))
    words = search.words()
    # Without words, a page of rows read however stale the statistics; a word search keeps
    # the planner's choices (words_page sets its own).
    with nullcontext() if words else merged_in_order():
        rows = words_page(events.order_by("-received_at", "-id"), "message", words, search.limit)
    return page_of(rows, search.limit, lambda event: (event.received_at, event.id))


def error_ids_matching(*, project_id: object, search: ErrorSearch, ids: list[int]) -> set[int]:
    """Which of these new errors a filtered list shows: the list's own query, on them only."""
    events = _errors_matching(project_id, search).filter(id__in=ids)
    events = words_filter(events, "message", search.words())
    return set(events.values_list("id", flat=True))


def _error_filters(events: QuerySet[Event], search: ErrorSearch) -> QuerySet[Event]:
    if search.build_id:
        events = events.filter(build_id=search.build_id)
    if search.source:
        events = events.filter(source=search.source)
    context = search.context_match()
    if context is not None:
        events = events.filter(customer_context__contains=context)
    if search.since:
        events = events.filter(received_at__gte=search.since)
    if search.until:
        events = events.filter(received_at__lte=search.until)
    return events


def issues_by_fingerprint(*, project_id: object, fingerprints: set) -> dict:
    """The issue of each fingerprint, for rows that link to theirs: one query."""
    issues = Issue.objects.filter(project_id=project_id, fingerprint__in=fingerprints)
    return {issue.fingerprint: issue for issue in issues.only("id", "fingerprint", "status")}
