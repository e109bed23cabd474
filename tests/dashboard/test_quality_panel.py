"""The quality panel's drawing rules, from figures alone: stacking, slots, the busiest codes,
session ends split by outcome, and a build marked only when clearly worse than the one before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.quality_panel import (
    BUILD_MIN_SESSIONS,
    OTHER,
    PLOT_HEIGHT,
    STACKED_CODES,
    PanelWindow,
    _nice_ceiling,
    panel_build,
    window_links,
    window_param,
    window_read,
)
from dashboard.templatetags.quality import percent, points, share_width

pytestmark = pytest.mark.pure

END = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _figures(window: str = "24h", *, length=timedelta(hours=24), **parts) -> dict:
    figures = {
        "window": {"name": window, "start": END - length, "end": END, "bucket": "hour"},
        "sessions": {"active": 0, "degraded": 0, "degraded_share": 0.0},
        "previous": {"sessions": {"active": 0, "degraded": 0, "degraded_share": 0.0}},
        "warnings": [],
        "terminations": [],
        "errors": [],
        "builds": [],
    }
    figures.update(parts)
    return figures


def _warning(code: str, series: list[tuple[datetime, int]], sessions: int = 1) -> dict:
    return {"code": code, "name": f"NAME_{code}", "count": sum(n for _, n in series),
            "sessions": sessions, "session_share": 0.5, "metrics": {},
            "series": [{"start": at, "count": n, "sessions": 1} for at, n in series]}  # fmt: skip


def _build(build_id: str, first_hour: int, sessions: int, degraded: float, errors: float) -> dict:
    return {"build_id": build_id, "first_seen": END - timedelta(hours=24 - first_hour),
            "sessions": sessions, "degraded": round(degraded * sessions),
            "degraded_share": degraded, "errors": round(errors * sessions),
            "errors_per_session": errors}  # fmt: skip


def test_bars_stack_each_codes_count_and_scale_to_a_readable_peak():
    hour = END - timedelta(hours=3)
    figures = _figures(warnings=[_warning("31002", [(hour, 6)]), _warning("31001", [(hour, 1)])])
    chart = panel_build(figures).chart
    assert len(chart.bars) == 24 and chart.peak == 10  # 7 rounds up to 10
    bar = chart.bars[21]
    assert bar.start == hour and bar.total == 7
    assert [(s.code, s.count) for s in bar.segments] == [("31002", 6), ("31001", 1)]
    assert sum(s.height for s in bar.segments) == pytest.approx(7 / 10 * PLOT_HEIGHT)
    # Stacked upwards from the baseline without overlap.
    assert bar.segments[0].y + bar.segments[0].height == pytest.approx(PLOT_HEIGHT)
    assert bar.segments[1].y + bar.segments[1].height == pytest.approx(bar.segments[0].y)
    assert all(not other.segments for i, other in enumerate(chart.bars) if i != 21)
    assert chart.table_rows == [(hour, [6, 1], 7)]


def test_a_week_is_drawn_in_four_hour_bars_and_a_month_in_days():
    week = _figures("7d", length=timedelta(days=7), warnings=[_warning("31002", [
        (END - timedelta(days=7), 1), (END - timedelta(days=7) + timedelta(hours=3), 2),
        (END - timedelta(hours=1), 4)])])  # fmt: skip
    chart = panel_build(week).chart
    assert len(chart.bars) == 42
    assert [bar.total for bar in chart.bars if bar.total] == [3, 4]
    # A month's bars are UTC days: the window starts at noon, so the first and last are halves.
    midnight = END.replace(hour=0)
    month = _figures("30d", length=timedelta(days=30), warnings=[_warning("31002", [
        (midnight - timedelta(hours=1), 2), (midnight + timedelta(hours=1), 5)])])  # fmt: skip
    chart = panel_build(month).chart
    assert len(chart.bars) == 31 and chart.bars[0].start == midnight - timedelta(days=30)
    assert [(bar.start, bar.total) for bar in chart.bars if bar.total] == [
        (midnight - timedelta(days=1), 2), (midnight, 5)]  # fmt: skip


def test_codes_beyond_the_busiest_stack_together_as_other():
    hour = END - timedelta(hours=1)
    warnings = [_warning(f"3100{n}", [(hour, 10 - n)]) for n in range(STACKED_CODES + 2)]
    chart = panel_build(_figures(warnings=warnings)).chart
    assert [entry.code for entry in chart.legend][:STACKED_CODES] == [
        f"3100{n}" for n in range(STACKED_CODES)
    ]
    other = chart.legend[-1]
    assert other.code == OTHER and other.name == "2 other codes" and other.count == 4 + 3
    assert chart.bars[-1].total == sum(10 - n for n in range(STACKED_CODES + 2))


def test_session_ends_are_split_into_failures_and_expected_outcomes():
    ends = [
        {"cause": "NORMAL_CLEARING", "sip_code": 200, "sessions": 30, "expected": True},
        {"cause": "USER_BUSY", "sip_code": 486, "sessions": 10, "expected": True},
        {"cause": "PURGE", "sip_code": None, "sessions": 5, "expected": False},
    ]
    panel = panel_build(_figures(terminations=ends))
    assert [(row.cause, row.share) for row in panel.expected_ends] == [
        ("NORMAL_CLEARING", 0.75),
        ("USER_BUSY", 0.25),
    ]
    assert [(row.cause, row.share) for row in panel.failed_ends] == [("PURGE", 1.0)]
    assert (panel.expected_total, panel.failed_total) == (40, 5)


def test_a_build_clearly_worse_than_its_predecessor_is_marked():
    builds = [
        _build("v3", 20, 40, degraded=0.10, errors=0.10),  # better again than v2
        _build("v1", 0, 50, degraded=0.10, errors=0.10),
        _build("v2", 10, 60, degraded=0.30, errors=0.12),  # 3x the degraded share
        _build("", 0, 9, degraded=0.9, errors=2.0),  # no build: never compared
    ]
    rows = panel_build(_figures(builds=builds)).builds
    assert [row.build_id for row in rows] == ["v3", "v2", "v1", ""]
    marked = {row.build_id: (row.worse_than, row.worse_because) for row in rows}
    assert marked["v2"] == ("v1", ["degraded 30% against 10%"])
    assert marked["v3"] == (None, []) and marked["v1"] == (None, []) and marked[""] == (None, [])


def test_small_or_slightly_worse_builds_are_not_marked():
    few = BUILD_MIN_SESSIONS - 1
    builds = [
        _build("v1", 0, 50, degraded=0.02, errors=0.10),
        _build("v2", 5, few, degraded=1.0, errors=5.0),  # too few calls to judge, or to judge by
        _build("v3", 10, 50, degraded=0.06, errors=0.19),  # +4 points, +0.09 errors: noise
        _build("v4", 15, 50, degraded=0.06, errors=0.30),  # errors 1.58x and +0.11: worse
    ]
    marked = {row.build_id: row.worse_than for row in panel_build(_figures(builds=builds)).builds}
    assert marked == {"v4": "v3", "v3": None, "v2": None, "v1": None}


def test_the_degraded_share_is_compared_with_the_previous_window():
    now = {"active": 50, "degraded": 10, "degraded_share": 0.2}
    before = {"active": 40, "degraded": 4, "degraded_share": 0.1}
    degraded = panel_build(_figures(sessions=now, previous={"sessions": before})).degraded
    assert degraded.direction == "worse" and degraded.change_points == pytest.approx(0.1)
    degraded = panel_build(_figures(sessions=before, previous={"sessions": now})).degraded
    assert degraded.direction == "better"
    empty = {"active": 0, "degraded": 0, "degraded_share": 0.0}
    degraded = panel_build(_figures(sessions=now, previous={"sessions": empty})).degraded
    assert degraded.change_points is None and degraded.direction == "same"


@pytest.mark.parametrize(
    "value, ceiling", [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (4800, 5000)]
)
def test_the_axis_top_is_a_round_number(value, ceiling):
    assert _nice_ceiling(value) == ceiling


def test_window_links_keep_the_filters_and_unknown_windows_fall_back():
    links = window_links(path="/projects/p/", current="7d", params={"code": "A&B", "source": ""})
    assert [(link["label"], link["current"]) for link in links] == [
        ("1 h", False), ("24 h", False), ("7 d", True), ("30 d", False)
    ]  # fmt: skip
    assert links[0]["url"] == "/projects/p/?code=A%26B&window=1h"
    assert window_param("2h") == "24h" and window_param(None) == "24h"
    assert window_param("30d") == "30d"


def test_number_formats():
    assert (percent(0.0), percent(0.08), percent(0.1234), percent(0.0004)) == (
        "0%", "8%", "12.3%", "<0.1%"
    )  # fmt: skip
    assert (points(-0.034), points(0.01), points(0.2)) == ("3.4 points", "1 point", "20 points")
    assert (share_width(0.0), share_width(0.001), share_width(0.5)) == ("0.0", "1.0", "50.0")


def test_the_panel_says_which_figures_are_estimates():
    exact = {"sessions_exact": True, "sessions_within": 0.0, "p95_within": 0.01}
    assert panel_build(_figures(accuracy=exact)).accuracy == (
        "Session counts are exact; p95 within 1%."
    )
    estimated = {**exact, "sessions_exact": False, "sessions_within": 0.032}
    assert panel_build(_figures(accuracy=estimated)).accuracy == (
        "Session counts are within 3%; p95 within 1%."
    )


def test_a_custom_range_is_read_as_utc_and_drawn_in_at_most_60_bars():
    window = window_read(
        {"window": "custom", "qfrom": "2026-12-01T00:00", "qto": "2026-12-05T00:00"}
    )
    assert (window.name, window.since, window.until) == (
        "custom", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC))  # fmt: skip
    assert window.params == {
        "window": "custom",
        "qfrom": "2026-12-01T00:00",
        "qto": "2026-12-05T00:00",
    }
    assert window_read({"window": "7d", "qfrom": "x"}) == PanelWindow(name="7d")
    assert window_read({"window": "custom", "qfrom": "2026-12-01T00:00"}).problem
    too_long = window_read(
        {"window": "custom", "qfrom": "2025-01-01T00:00", "qto": "2026-12-01T00:00"}
    )
    assert too_long.name == "24h" and "at most 400 days" in too_long.problem
    for hours, bucket, step in ((1, "minute", "minute"), (3, "minute", "5 minutes"),
                                (1, "hour", "hour"), (48, "hour", "hour"), (96, "hour", "4 hours"),
                                (24 * 30, "hour", "day"), (24 * 90, "hour", "week")):  # fmt: skip
        figures = _figures("custom", length=timedelta(hours=hours))
        figures["window"]["bucket"] = bucket  # never finer bars than the figures' buckets
        assert panel_build(figures).chart.step_label == step, (hours, bucket)


def test_a_date_alone_on_the_axis_or_a_bar_means_its_midnight():
    """30 days to 12:00: day bars, the axis at their edges; a date alone means midnight."""
    month = panel_build(
        _figures(
            "30d",
            length=timedelta(days=30),
            warnings=[_warning("31002", [(END - timedelta(days=3), 4)])],
        )
    )
    labels = [label for _, label in month.chart.axis]
    assert labels == ["Oct 23", "Nov 7 12:00", "Nov 23"]  # the bars run to midnight
    assert all(bar.label == f"{bar.start:%b %-d}" for bar in month.chart.bars)
    assert "<title>Nov 19 · NAME_31002: 4</title>" in month.chart.rects
    day = panel_build(
        _figures("24h", warnings=[_warning("31002", [(END - timedelta(hours=2), 1)])])
    )
    assert [label for _, label in day.chart.axis] == ["12:00", "00:00", "12:00"]
    assert "<title>Nov 22 10:00 · NAME_31002: 1</title>" in day.chart.rects


def test_a_code_name_in_a_bar_is_escaped():
    warning = _warning("31002", [(END - timedelta(hours=2), 1)])
    warning["name"] = "<b>x</b>"
    assert "&lt;b&gt;x&lt;/b&gt;: 1" in panel_build(_figures(warnings=[warning])).chart.rects
