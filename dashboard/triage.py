"""The project page as a triage view: its filters read from the URL (one definition with the API,
errorsink/search.py), the issues list and the errors list they select, and the links that keep
every filter while changing one.

A filter the URL gets wrong is said beside the form and left out; the page never fails on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from dashboard.present import error_rows_annotate, sparkline_points
from errorsink.issues.models import STATUSES
from errorsink.issues.selectors import errors_page, issue_trends, issues_page
from errorsink.paging import Page
from errorsink.search import ErrorSearch, IssueSearch, validated_leniently

ISSUE_TABLE = "dashboard/partials/issue_table.html"
# The URL parameters of the page: the errors list pages with `cursor`, the issues list with
# `issues_cursor`; a custom range's start comes as `from` (a datetime-local input).
ISSUES_CURSOR = "issues_cursor"
RANGE_PRESETS = [
    ("", "any time"), ("15m", "last 15 minutes"), ("1h", "last hour"),
    ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days"),
]  # fmt: skip
STATUS_TABS = [*STATUSES, "all"]
PAGE_PARAMS = tuple(dict.fromkeys(
    [*ErrorSearch.model_fields, *IssueSearch.model_fields, "from", ISSUES_CURSOR, "window",
     "qfrom", "qto"]
))  # fmt: skip


@dataclass
class Filters:
    """What the page's URL asks for, checked; ``problems`` says what was left out and why."""

    errors: ErrorSearch
    issues: IssueSearch
    params: dict[str, str]
    problems: list[str] = field(default_factory=list)

    @property
    def any_set(self) -> bool:
        """A filter that narrows the lists (paging and issue status/sort do not)."""
        return bool(self.errors.filled())

    @property
    def paged(self) -> bool:
        """The errors list shows older rows: new ones are not pushed into it."""
        return bool(self.errors.cursor or self.errors.until)

    def url(self, path: str, **changes: str) -> str:
        """``path`` with these filters, some changed ("" removes one); cursors never carry."""
        params = {k: v for k, v in self.params.items() if k not in ("cursor", ISSUES_CURSOR)}
        params.update(changes)
        query = urlencode({key: value for key, value in params.items() if value})
        return f"{path}?{query}" if query else path


def filters_read(query: Mapping[str, str]) -> Filters:
    """The page's own parameters only: a socket's URL also carries what it alone needs."""
    params = {key: str(query[key]).strip() for key in PAGE_PARAMS if key in query}
    if params.get("from"):  # a custom range's start, from a datetime-local input
        params["since"] = params["from"]
    problems: list[str] = []
    errors = _checked(ErrorSearch, params, problems)
    issue_params = {**params, "cursor": params.get(ISSUES_CURSOR, "")}
    issues = _checked(IssueSearch, issue_params, problems)
    return Filters(errors=errors, issues=issues, params=params, problems=problems)


def _checked[M: (ErrorSearch, IssueSearch)](model: type[M], params: dict, problems: list) -> M:
    search, refused = validated_leniently(model, params)
    problems.extend(problem for problem in refused if problem not in problems)
    return search


@dataclass
class IssueRow:
    issue: object
    trend: list[int]
    trend_points: str


def issue_rows(page: Page) -> list[IssueRow]:
    trends = issue_trends(issue_ids=[issue.id for issue in page.items])
    return [
        IssueRow(issue, trends[issue.id], sparkline_points(trends[issue.id], width=96, height=20))
        for issue in page.items
    ]


def issue_table_context(*, project, filters: Filters) -> dict:
    page = issues_page(project_id=project.id, search=filters.issues)
    base = filters.url("")
    return {
        "project": project,
        "issue_rows": issue_rows(page),
        "issues_next": page.next,
        "issues_paged": bool(filters.issues.cursor),
        "status": filters.issues.status,
        "status_tabs": [
            (tab, filters.url("", status=tab if tab != "unresolved" else "")) for tab in STATUS_TABS
        ],  # fmt: skip
        "filters_query": base.lstrip("?"),
        "filters_set": filters.any_set,
    }


def issue_table_html(*, project, filters: Filters, oob: bool = False) -> SafeString:
    context = issue_table_context(project=project, filters=filters) | {"oob": oob}
    return mark_safe(render_to_string(ISSUE_TABLE, context).strip())


def errors_list(*, project_id: object, filters: Filters) -> Page:
    page = errors_page(project_id=project_id, search=filters.errors)
    error_rows_annotate(page.items)
    return page
