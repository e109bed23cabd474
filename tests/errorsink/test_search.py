from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from pydantic import ValidationError

from errorsink.paging import cursor_encode
from errorsink.search import ErrorSearch, IssueSearch

pytestmark = pytest.mark.pure


def _problems(model, params: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(params)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_it_reads_a_pages_query_string():
    search = IssueSearch.model_validate(
        {"q": " Tool  timed", "since": "24h", "sort": "count", "cursor": cursor_encode(5, 3),
         "window": "7d", "until": ""}
    )  # fmt: skip
    assert search.words() == ["tool", "timed"]
    assert search.after == (5, 3)
    assert abs(search.since - (timezone.now() - timedelta(hours=24))) < timedelta(seconds=5)
    assert search.until is None
    assert set(search.filled()) == {"q", "since", "sort"}


def test_a_time_without_a_zone_is_utc():
    search = ErrorSearch.model_validate({"since": "2026-11-01T10:00", "until": "2026-11-02"})
    assert search.since == datetime(2026, 11, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "status"),
        ({"sort": "newest"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "zz"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "until"),
        ({"sort": "count", "cursor": cursor_encode(datetime.now(UTC), 1)}, "cursor"),
    ],
)
def test_it_refuses_an_unknown_value_naming_its_parameter(params, field):
    assert field in _problems(IssueSearch, params)


def test_an_error_search_reads_words_context_and_source():
    search = ErrorSearch.model_validate({"q": "Call-timeout 42!", "ctx": 'plan="pro"'})
    assert search.words() == ["call", "timeout", "42"]
    assert search.context_match() == {"plan": "pro"}
    assert ErrorSearch(ctx="tier=3").context_match() == {"tier": 3}
    assert ErrorSearch(ctx="name=bob").context_match() == {"name": "bob"}
    assert "ctx" in _problems(ErrorSearch, {"ctx": "=x"})
    assert "source" in _problems(ErrorSearch, {"source": "browser"})


def test_a_time_is_read_in_utc_and_an_unrepresentable_one_refused():
    search = ErrorSearch.model_validate({"since": "0088-03-20T21:11:02-20:16"})
    assert search.since.utcoffset() == timedelta(0)
    assert "since" in _problems(ErrorSearch, {"since": "0001-01-01T00:00:00+05:00"})
