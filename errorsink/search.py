"""What a list of errors or issues may be filtered by (docs/issues.md): one typed definition each,
read by the API from its query string (and published in its OpenAPI document) and by the pages
from theirs, so both accept and refuse exactly the same values.

A refused value is a pydantic ValidationError naming the field; the API turns it into a 422 with
details, a page into a message beside the filters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from errorsink.catalog import SOURCES
from errorsink.issues.models import STATUSES
from errorsink.paging import LIMIT_DEFAULT, LIMIT_MAX, BadCursor, cursor_decode

_RELATIVE = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# Words of a search: letters and digits; everything else separates them, as PostgreSQL's
# parser does, so "call-timeout" finds "call timeout" and quotes cannot reach the query syntax.
_WORD = re.compile(r"[^\W_]+")
WORDS_MAX = 8


def _moment(value: Any) -> Any:
    """ "15m", "24h", "7d" (before now), or ISO 8601; a time without a zone is UTC."""
    if isinstance(value, str):
        text = value.strip()
        relative = _RELATIVE.match(text)
        if relative:
            amount, unit = relative.groups()
            return timezone.now() - timedelta(**{_UNITS[unit]: int(amount)})
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "must be an ISO 8601 time or a duration such as 15m, 24h, 7d"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _in_utc(value: datetime) -> datetime:
    # PostgreSQL refuses zone offsets past 15:59 and years before 4713 BC: a time is in UTC
    # before it reaches a query.
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    AfterValidator(_in_utc),
    Field(description='ISO 8601 (UTC when it has no zone), or a duration before now: "15m", '
          '"24h", "7d".'),
]  # fmt: skip


def _arrival_cursor_checked(cursor: str) -> str:
    cursor_after(cursor)
    return cursor


# The cursor of a list by (time, id): what the previous page's "next" said.
ArrivalCursor = Annotated[
    str,
    Field(max_length=500, description='The "next" of the previous page.'),
    AfterValidator(_arrival_cursor_checked),
]


def validated_leniently[M: BaseModel](model: type[M], params: dict) -> tuple[M, list[str]]:
    """The model of a page's query string, leaving out (and naming) each value it refuses: a
    page says what it could not use and shows the rest, where the API answers 422."""
    params = dict(params)
    problems: list[str] = []
    for _ in range(len(params) + 1):
        try:
            return model.model_validate(params), problems
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                message = f"{name}: {error['msg']}" if name else error["msg"]
                if message not in problems:
                    problems.append(message)
                params.pop(name, None)
    return model(), problems


def _blank_is_none(value: Any) -> Any:
    # An empty field of a page's form means "not set".
    return None if isinstance(value, str) and not value.strip() else value


def _no_nul(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL: a filter holding one is refused, not a server error.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class _Search(BaseModel):
    # Pages send other parameters too (the quality window); they are not this model's business.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    _text_storable = field_validator("*", mode="before")(_no_nul)

    q: str = Field("", max_length=200, description="Words in the text, whole words, any "
                   "case (PostgreSQL text search).")  # fmt: skip
    code: str = Field("", max_length=128, description="Code prefix, case-insensitive.")
    build_id: str = Field("", max_length=200, description="Exactly this build.")
    since: Annotated[Moment | None, BeforeValidator(_blank_is_none)] = None
    until: Annotated[Moment | None, BeforeValidator(_blank_is_none)] = None
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="Page size.")

    @field_validator("until")
    @classmethod
    def _range_in_order(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if since and until and since > until:
            raise ValueError("must not be before since")
        return until

    def words(self) -> list[str]:
        return _WORD.findall(self.q.lower())[:WORDS_MAX]

    def filled(self) -> dict[str, str]:
        """The filters that are set, as the page's URL carries them (cursor and limit apart)."""
        values = self.model_dump(exclude={"cursor", "limit"})
        return {key: _url_value(value) for key, value in values.items() if value not in ("", None)}


def _url_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def words_query(words: list[str]) -> SearchQuery:
    """Every word, whole, in PostgreSQL's simple configuration (no stemming, so codes and ids
    match as written). Whole words, not prefixes: a prefix query reads far more of the index."""
    return SearchQuery(" & ".join(words), config="simple",
                       search_type="raw")  # fmt: skip


def words_filter(queryset: QuerySet, column: str, words: list[str]) -> QuerySet:
    """Rows whose ``column`` holds every word; the same expression as the GIN index on it."""
    if not words:
        return queryset
    return queryset.annotate(_words=SearchVector(column, config="simple")).filter(
        _words=words_query(words)
    )


# How many of a list's newest rows a word search reads before asking the words' index.
NEWEST_SCANNED = 2000


def words_page(ordered: QuerySet, column: str, words: list[str], limit: int) -> list:
    """The first ``limit + 1`` rows of ``ordered`` whose ``column`` holds every word.

    PostgreSQL cannot tell a common word from a rare one here (no statistics on the words of
    an expression), so it would either walk the newest rows computing each one's words (slow
    for a rare word: it reads them all) or collect every match from the words' index and sort
    them (slow for a common word: millions). Instead, the newest NEWEST_SCANNED rows are
    searched first, which finds a common word's page at once; only when they hold too few
    matches is the index asked, and then the matches are few.
    """
    if not words:
        return list(ordered[: limit + 1])
    newest = ordered.values("pk")[:NEWEST_SCANNED]
    rows = list(words_filter(ordered.filter(pk__in=newest), column, words)[: limit + 1])
    if len(rows) > limit:
        return rows
    # The words are rare among the newest rows: collect their matches from the words' index
    # and sort those. Left to itself the planner may still walk the newest rows (its guess of a
    # word's share is a fixed fraction), so plain index scans are off for this one query; the
    # bitmap scan of the words' index stays on.
    with transaction.atomic(using=ordered.db), connections[ordered.db].cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        return list(words_filter(ordered, column, words)[: limit + 1])


def code_prefix_filter(queryset: QuerySet, code: str) -> QuerySet:
    return queryset.filter(code__istartswith=code) if code else queryset


class ErrorSearch(_Search):
    """Filters of a project's errors, newest arrival first."""

    source: Literal["", *SOURCES] = Field("", description="Where the error came from.")
    ctx: str = Field("", max_length=300, description='A customer-context value, "key=value" '
                     '(the value as JSON when it parses, else as text).')  # fmt: skip
    cursor: ArrivalCursor = ""

    @field_validator("ctx")
    @classmethod
    def _key_value(cls, ctx: str) -> str:
        if ctx and not ctx.partition("=")[0].strip():
            raise ValueError('must be "key=value"')
        return ctx

    @property
    def after(self) -> tuple[datetime, int] | None:
        return cursor_after(self.cursor)

    def context_match(self) -> dict | None:
        """The customer context a match must contain: {"key": value}."""
        if not self.ctx:
            return None
        key, _, text = self.ctx.partition("=")
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text
        return {key.strip(): value}


IssueSort = Literal["last_seen", "count", "sessions"]
SORT_COLUMNS = {"last_seen": "last_seen", "count": "event_count", "sessions": "session_count"}


class IssueSearch(_Search):
    """Filters of a project's issues; ``sort`` picks the order, always newest/largest first."""

    status: Literal[*STATUSES, "all"] = Field("unresolved", description="Or all of them.")
    sort: IssueSort = Field("last_seen", description="Newest activity, events, or sessions.")
    cursor: str = Field("", max_length=500, description='The "next" of the previous page.')

    @field_validator("cursor")
    @classmethod
    def _cursor_readable(cls, cursor: str, info: ValidationInfo) -> str:
        cursor_values(cursor, *_issue_cursor_shape(info.data.get("sort", "last_seen")))
        return cursor

    @property
    def after(self) -> tuple[Any, int] | None:
        return cursor_values(self.cursor, *_issue_cursor_shape(self.sort))

    def filled(self) -> dict[str, str]:
        values = super().filled()
        if self.status == "unresolved":
            values.pop("status")
        if self.sort == "last_seen":
            values.pop("sort")
        return values


def _issue_cursor_shape(sort: str) -> tuple[type, type]:
    return (datetime if sort == "last_seen" else int), int


def cursor_values(cursor: str, *shape: type) -> tuple | None:
    """The sort key a cursor names, or None for no cursor; ValueError (a validation error in
    a model) for one this list did not hand out."""
    if not cursor:
        return None
    try:
        return cursor_decode(cursor, *shape)
    except BadCursor as exc:
        raise ValueError(str(exc)) from None


def cursor_after(cursor: str) -> tuple[datetime, int] | None:
    """The (arrival, id) a list of events in arrival order continues after; ValueError if the
    cursor is not one such a list handed out."""
    return cursor_values(cursor, datetime, int)


def keyset_before(column: str, after: tuple[Any, int] | None) -> Q:
    """Rows after ``after`` in (column, id) descending order."""
    if after is None:
        return Q()
    value, row_id = after
    return Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": row_id})


class SessionSearch(BaseModel):
    """Filters of a project's sessions, most recently started first."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    _text_storable = field_validator("*", mode="before")(_no_nul)

    q: str = Field("", max_length=200, description="Session id prefix, as written (case "
                   "matters: ids are opaque).")  # fmt: skip
    build_id: str = Field("", max_length=200, description="Exactly this build.")
    end_cause: str = Field("", max_length=128, description="How it ended, e.g. "
                           "NORMAL_CLEARING; `none` for sessions with no end yet.")  # fmt: skip
    degraded: Annotated[bool | None, BeforeValidator(_blank_is_none)] = Field(
        None, description="Had a network-quality, data-flow or connectivity warning."
    )
    has_errors: Annotated[bool | None, BeforeValidator(_blank_is_none)] = Field(
        None, description="Had at least one error."
    )
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="Page size.")
    cursor: ArrivalCursor = ""

    @property
    def after(self) -> tuple[datetime, int] | None:
        return cursor_after(self.cursor)

    def filled(self) -> dict[str, str]:
        values = self.model_dump(exclude={"cursor", "limit"})
        return {key: _url_value(value).lower() if isinstance(value, bool) else _url_value(value)
                for key, value in values.items() if value not in ("", None)}  # fmt: skip
