from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.templatetags.when import duration_ms, moment

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    ("value", "text"),
    [(850, "850 ms"), (1000, "1 s"), (1500, "1.5 s"), (83421, "1 min 23 s"), (120000, "2 min"),
     (3_720_000, "1 h 2 min"), (7_200_000, "2 h"), ("n/a", "n/a"), (True, "True")],
)  # fmt: skip
def test_durations_read_as_people_say_them(value, text):
    assert duration_ms(value) == text


def test_a_moment_has_its_date_time_and_zone():
    when = datetime(2026, 11, 22, 11, 41, 7, 250000, tzinfo=timezone(timedelta(hours=2)))
    html = moment(when)
    assert html == (
        '<time datetime="2026-11-22T09:41:07.250000+00:00" '
        'title="2026-11-22 09:41:07.250 UTC">2026-11-22 09:41:07 UTC</time>'
    )
    assert "data-relative" in moment(datetime.now(UTC), relative=True)
    assert moment(None) == ""
