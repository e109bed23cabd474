from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errorsink.paging import BadCursor, cursor_decode, cursor_encode


@given(
    when=st.datetimes(timezones=st.just(UTC)),
    row_id=st.integers(min_value=0, max_value=2**63 - 1),
    text=st.text(),
)
def test_it_round_trips_a_sort_key(when, row_id, text):
    cursor = cursor_encode(when, row_id, text)
    assert cursor_decode(cursor, datetime, int, str) == (when, row_id, text)


@pytest.mark.parametrize(
    "cursor",
    ["", "!!!", "not-base64-at-all~", cursor_encode(1), cursor_encode("x", 1),
     cursor_encode("2026-01-01T00:00:00", 1),
     cursor_encode(datetime(2026, 12, 5, 13, 14, tzinfo=UTC), True)],
)  # fmt: skip
def test_it_refuses_a_cursor_it_did_not_hand_out(cursor):
    with pytest.raises(BadCursor):
        cursor_decode(cursor, datetime, int)
