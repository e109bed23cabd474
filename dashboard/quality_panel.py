"""The project page's quality panel, drawn from one window's figures
(errorsink/quality/selectors.py): stacked warning bars, the degraded share against the previous
window, session ends split into expected outcomes and failures, and builds each compared with the
one before.

``panel_build`` is pure: it takes the dict ``project_quality`` returns and gives the template
plain numbers. The chart is server-rendered SVG (no script, no CDN, nothing to load), and every
figure is also in a table. ``panel_html`` reads and renders, for the page and its live updates.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from errorsink.quality.figure_reads import project_quality
from errorsink.quality.selectors import CUSTOM, WINDOWS, custom_range_problems

TEMPLATE = "dashboard/partials/quality_panel.html"
DEFAULT_WINDOW = "24h"

WINDOW_LABELS = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}
# Bars per window: per minute, hour, 4 hours and day, so a 390 px screen still reads them.
DISPLAY_STEP = {
    "1h": timedelta(minutes=1),
    "24h": timedelta(hours=1),
    "7d": timedelta(hours=4),
    "30d": timedelta(days=1),
}
# The fewest seconds between two live redraws of a page's panel: the last hour moves with every
# rollup run; a month's figures barely move in a minute, so redrawing them less often leaves the
# live budget to the rows.
REDRAW_SECONDS = {"1h": 0.0, "24h": 10.0, "7d": 60.0, "30d": 60.0, CUSTOM: 60.0}
# A custom range's bars: the first step that draws it in at most about 60 bars.
CUSTOM_STEPS = [timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1),
                timedelta(hours=4), timedelta(days=1), timedelta(days=7)]  # fmt: skip
CUSTOM_BARS = 60
BUCKETS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
# The page's own names for a custom range's bounds (the error list has since and until), as a
# datetime-local input sends them: no zone, read as UTC.
RANGE_FROM, RANGE_TO = "qfrom", "qto"
# Parameters the panel sets itself, never carried over from the page's filters.
PANEL_OWN = frozenset({"window", RANGE_FROM, RANGE_TO, "cursor", "issues_cursor"})
STACKED_CODES = 6  # the busiest codes get a colour each, the rest stack as "other"
OTHER = "other"
# A build is compared only with enough calls behind both figures, so three calls page nobody.
BUILD_MIN_SESSIONS = 5
WORSE_DEGRADED_POINTS = 0.05  # and at least WORSE_RATIO times the predecessor's share
WORSE_ERRORS_PER_SESSION = 0.1  # and at least WORSE_RATIO times the predecessor's rate
WORSE_RATIO = 1.5
TOP_ENDS = 5
BUILDS_SHOWN = 10
# Chart geometry in SVG user units: each bar slot is 10 wide, the plot 100 high.
SLOT, BAR, PLOT_HEIGHT = 10, 8, 100


@dataclass
class Segment:
    code: str
    name: str
    count: int
    colour: int  # index into the stylesheet's palette; OTHER's colour is the last one
    y: float
    height: float


@dataclass
class Bar:
    start: datetime
    total: int
    x: int
    segments: list[Segment] = field(default_factory=list)
    label: str = ""  # when it starts, as its tooltip says it: a day bar by its date alone


@dataclass
class LegendEntry:
    code: str
    name: str
    count: int
    sessions: int
    session_share: float
    colour: int
    metrics: list[tuple[str, float, float]]  # (metric, avg, p95)


@dataclass
class Chart:
    bars: list[Bar]
    legend: list[LegendEntry]
    width: int
    peak: int
    step_label: str
    axis: list[tuple[datetime, str]]  # (moment, label)
    table_codes: list[LegendEntry]
    table_rows: list[tuple[datetime, list[int], int]]

    @property
    def empty(self) -> bool:
        return not self.legend

    # The bars and the table rows are built here rather than by template loops, which were
    # most of a 30-day page's render (2,400 values through the template engine). Only the code
    # names are text from outside; everything else is a number or a time made here.
    @property
    def rects(self) -> SafeString:
        return mark_safe("".join(
            f'<rect class="c{segment.colour}" x="{bar.x}" y="{segment.y}" width="{BAR}" '
            f'height="{segment.height}"><title>{bar.label} · {escape(segment.name)}: '
            f"{segment.count}</title></rect>"
            for bar in self.bars for segment in bar.segments))  # fmt: skip

    @property
    def table_body(self) -> SafeString:
        return mark_safe("\n".join(
            f'<tr><td class="time">{start:%Y-%m-%d %H:%M}</td>'
            + "".join(f'<td class="count">{count}</td>' for count in counts)
            + f'<td class="count">{total}</td></tr>'
            for start, counts, total in self.table_rows))  # fmt: skip


@dataclass
class EndRow:
    cause: str
    sip_code: int | None
    sessions: int
    share: float  # of the sessions of its group (expected or failure)


@dataclass
class BuildRow:
    build_id: str
    first_seen: datetime
    sessions: int
    degraded_share: float
    errors_per_session: float
    worse_than: str | None = None
    worse_because: list[str] = field(default_factory=list)


@dataclass
class Degraded:
    active: int
    degraded: int
    share: float
    previous_active: int
    previous_share: float
    change_points: float | None  # None when the previous window had no sessions

    @property
    def direction(self) -> str:
        if self.change_points is None or abs(self.change_points) < 0.0005:
            return "same"
        return "worse" if self.change_points > 0 else "better"


@dataclass
class Panel:
    window: str
    window_label: str
    start: datetime
    end: datetime
    chart: Chart
    degraded: Degraded
    expected_ends: list[EndRow]
    failed_ends: list[EndRow]
    expected_total: int
    failed_total: int
    builds: list[BuildRow]
    builds_hidden: int
    has_data: bool
    accuracy: str = ""
    custom: bool = False

    @property
    def window_phrase(self) -> str:
        """The window in a sentence: "the last 24 h", or a custom range's bounds."""
        return self.window_label if self.custom else f"the last {self.window_label}"

    @property
    def previous_phrase(self) -> str:
        return (
            "the same length of time before" if self.custom else f"the previous {self.window_label}"
        )

    @property
    def hours_on_axis(self) -> bool:
        return self.end - self.start <= timedelta(days=2)

    @property
    def end_groups(self) -> list[tuple[str, list[EndRow], int, str]]:
        return [
            ("Failures", self.failed_ends, self.failed_total, "failed"),
            ("Expected outcomes", self.expected_ends, self.expected_total, "expected"),
        ]


@dataclass(frozen=True)
class PanelWindow:
    """The window a page asked for: a named one, or a custom range with its bounds (UTC).
    ``problem`` says why a custom range asked for was not taken (the default shows instead);
    ``asked`` keeps what was typed, so the form shows it again beside the message."""

    name: str = DEFAULT_WINDOW
    since: datetime | None = None
    until: datetime | None = None
    problem: str = ""
    asked: tuple[str, str] = ("", "")

    @property
    def params(self) -> dict[str, str]:
        """What a URL carries for this window (the page's links, its socket)."""
        if self.name != CUSTOM:
            return {"window": self.name}
        return {"window": CUSTOM, RANGE_FROM: _local(self.since), RANGE_TO: _local(self.until)}

    @property
    def query(self) -> str:
        return urlencode(self.params)


# What the form says for each of custom_range_problems' complaints, in the form's own words.
_RANGE_PROBLEMS = {
    "must be after since": "“To” must be after “From”.",
    "must not be in the future": "“From” is in the future.",
}


def window_read(query) -> PanelWindow:
    """The window of a page's (or its socket's) query string."""
    name = query.get("window")
    if name != CUSTOM:
        return PanelWindow(name=window_param(name))
    asked = (str(query.get(RANGE_FROM) or "")[:40], str(query.get(RANGE_TO) or "")[:40])
    since, until = _utc(asked[0]), _utc(asked[1])
    unread = [label for label, moment in (("From", since), ("To", until)) if moment is None]
    if unread:
        return PanelWindow(asked=asked, problem="The custom range was not shown: "
                           + " and ".join(f"“{label}”" for label in unread)
                           + " needs a date and a time.")  # fmt: skip
    problems = custom_range_problems(since, until)
    if problems:
        reason = next(iter(problems.values()))
        reason = _RANGE_PROBLEMS.get(reason, f"{reason[0].upper()}{reason[1:]}.")
        return PanelWindow(asked=asked, problem=f"The custom range was not shown: {reason}")
    return PanelWindow(name=CUSTOM, since=since, until=until, asked=asked)


def _utc(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _local(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""


def panel_build(figures: dict) -> Panel:
    window = figures["window"]["name"]
    expected, expected_total = _ends(figures["terminations"], expected=True)
    failed, failed_total = _ends(figures["terminations"], expected=False)
    builds = _builds(figures["builds"])
    chart = _chart(figures, window)
    sessions = figures["sessions"]
    return Panel(
        window=window,
        window_label=_window_label(figures["window"]),
        start=figures["window"]["start"],
        end=figures["window"]["end"],
        chart=chart,
        degraded=_degraded(sessions, figures["previous"]["sessions"]),
        expected_ends=expected,
        failed_ends=failed,
        expected_total=expected_total,
        failed_total=failed_total,
        builds=builds[:BUILDS_SHOWN],
        builds_hidden=max(0, len(builds) - BUILDS_SHOWN),
        has_data=bool(sessions["active"] or figures["warnings"] or figures["errors"]
                      or figures["terminations"]),
        accuracy=_accuracy(figures.get("accuracy")),
        custom=window == CUSTOM,
    )  # fmt: skip


def _accuracy(accuracy: dict | None) -> str:
    """What the page says of the estimates (the API's ``accuracy``), in a reader's words."""
    if not accuracy:
        return ""
    sessions = ("Session counts are exact" if accuracy["sessions_exact"] else
                f"Session counts are within {accuracy['sessions_within']:.0%}")  # fmt: skip
    return f"{sessions}; p95 within {accuracy['p95_within']:.0%}."


def _degraded(now: dict, previous: dict) -> Degraded:
    change = None
    if previous["active"]:
        change = now["degraded_share"] - previous["degraded_share"]
    return Degraded(
        active=now["active"],
        degraded=now["degraded"],
        share=now["degraded_share"],
        previous_active=previous["active"],
        previous_share=previous["degraded_share"],
        change_points=change,
    )


# ---------------------------------------------------------------------------------------------
# The chart


def _window_label(window: dict) -> str:
    if window["name"] != CUSTOM:
        return WINDOW_LABELS[window["name"]]
    start, end = window["start"], window["end"]
    return f"{start:%b %-d %H:%M} to {end:%b %-d %H:%M} UTC"


def _display_step(window: dict) -> timedelta:
    if window["name"] != CUSTOM:
        return DISPLAY_STEP[window["name"]]
    length, bucket = window["end"] - window["start"], BUCKETS[window["bucket"]]
    steps = [step for step in CUSTOM_STEPS if step >= bucket]  # no finer than the figures
    return next((step for step in steps if length / step <= CUSTOM_BARS), steps[-1])


def _chart(figures: dict, window: str) -> Chart:
    end, step = figures["window"]["end"], _display_step(figures["window"])
    # Bars start on their step's UTC boundary (a day at midnight, 4 hours at 0, 4, 8 ...), as
    # the chart's "per day (UTC)" says; the first and last may cover part of the window only.
    start = _step_floor(figures["window"]["start"], step)
    slots = math.ceil((end - start) / step)
    legend = _legend(figures["warnings"])
    colour_of = {entry.code: entry.colour for entry in legend}
    counts = [[0] * len(legend) for _ in range(slots)]
    position = {entry.code: index for index, entry in enumerate(legend)}
    for warning in figures["warnings"]:
        column = position[warning["code"] if warning["code"] in colour_of else OTHER]
        for point in warning["series"]:
            slot = int((point["start"] - start) / step)
            if 0 <= slot < slots:
                counts[slot][column] += point["count"]
    totals = [sum(row) for row in counts]
    peak = _nice_ceiling(max(totals, default=0))
    bars = [_bar(slot, start + slot * step, counts[slot], legend, peak) for slot in range(slots)]
    for bar in bars:
        bar.label = (
            f"{bar.start:%b %-d}" if step >= timedelta(days=1) else f"{bar.start:%b %-d %H:%M}"
        )
    axis = _axis(start, start + slots * step, step)  # the bars' own edges
    rows = [(bar.start, counts[i], totals[i]) for i, bar in enumerate(bars) if totals[i]]
    return Chart(bars=bars, legend=legend, width=slots * SLOT, peak=peak,
                 step_label=_step_label(step), axis=axis, table_codes=legend,
                 table_rows=rows)  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _step_floor(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - _EPOCH) % step


def _legend(warnings: list[dict]) -> list[LegendEntry]:
    """The busiest codes in order, then one entry for all the others together."""
    ranked = sorted(warnings, key=lambda w: (-w["count"], w["code"]))
    legend = [
        LegendEntry(code=w["code"], name=w["name"], count=w["count"], sessions=w["sessions"],
                    session_share=w["session_share"], colour=index,
                    metrics=_metric_rows(w.get("metrics", {})))
        for index, w in enumerate(ranked[:STACKED_CODES])
    ]  # fmt: skip
    rest = ranked[STACKED_CODES:]
    if rest:
        legend.append(
            LegendEntry(code=OTHER, name=f"{len(rest)} other codes",
                        count=sum(w["count"] for w in rest), sessions=0, session_share=0.0,
                        colour=STACKED_CODES, metrics=[])
        )  # fmt: skip
    return legend


def _metric_rows(metrics: dict) -> list[tuple[str, float, float]]:
    return [(name, values["avg"], values["p95"]) for name, values in sorted(metrics.items())]


def _bar(slot: int, start: datetime, counts: list[int], legend: list, peak: int) -> Bar:
    bar = Bar(start=start, total=sum(counts), x=slot * SLOT + (SLOT - BAR) // 2)
    top = float(PLOT_HEIGHT)
    for entry, count in zip(legend, counts, strict=True):
        if not count:
            continue
        height = count / peak * PLOT_HEIGHT
        top -= height
        bar.segments.append(Segment(code=entry.code, name=entry.name, count=count,
                                    colour=entry.colour, y=round(top, 3),
                                    height=round(height, 3)))  # fmt: skip
    return bar


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above ``value``: a readable axis top."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _axis(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, str]]:
    """Start, middle and end, labelled so that a date alone always means its midnight."""
    days = step >= timedelta(days=1) or end - start > timedelta(days=2)
    labels = []
    for moment in (start, start + (end - start) / 2, end):
        at_midnight = moment.hour == moment.minute == 0
        labels.append((moment, f"{moment:%b %-d}" if days and at_midnight else
                       f"{moment:%b %-d %H:%M}" if days else f"{moment:%H:%M}"))  # fmt: skip
    return labels


def _step_label(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes < 60:
        return "minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    if hours < 24:
        return "hour" if hours == 1 else f"{hours} hours"
    return {1: "day", 7: "week"}.get(hours // 24, f"{hours // 24} days")


# ---------------------------------------------------------------------------------------------
# Session ends and builds


def _ends(terminations: list[dict], *, expected: bool) -> tuple[list[EndRow], int]:
    rows = [row for row in terminations if row["expected"] is expected]
    total = sum(row["sessions"] for row in rows)
    top = sorted(rows, key=lambda row: (-row["sessions"], row["cause"]))[:TOP_ENDS]
    return [
        EndRow(cause=row["cause"], sip_code=row["sip_code"], sessions=row["sessions"],
               share=row["sessions"] / total if total else 0.0)
        for row in top
    ], total  # fmt: skip


def _builds(rows: list[dict]) -> list[BuildRow]:
    """Newest first; each named build compared with the named build seen before it."""
    named = sorted((row for row in rows if row["build_id"]),
                   key=lambda row: (row["first_seen"], row["build_id"]))  # fmt: skip
    result, predecessor = [], None
    for row in named:
        build = _build_row(row)
        if predecessor is not None:
            _compare(build, predecessor)
        result.append(build)
        if build.sessions >= BUILD_MIN_SESSIONS:
            predecessor = build
    result.reverse()
    result += [_build_row(row) for row in rows if not row["build_id"]]
    return result


def _build_row(row: dict) -> BuildRow:
    return BuildRow(build_id=row["build_id"], first_seen=row["first_seen"],
                    sessions=row["sessions"], degraded_share=row["degraded_share"],
                    errors_per_session=row["errors_per_session"])  # fmt: skip


def _compare(build: BuildRow, before: BuildRow) -> None:
    """Mark ``build`` when it is clearly worse than ``before`` (see the thresholds above)."""
    if build.sessions < BUILD_MIN_SESSIONS:
        return
    if _clearly_above(build.degraded_share, before.degraded_share, WORSE_DEGRADED_POINTS):
        build.worse_because.append(
            f"degraded {build.degraded_share:.0%} against {before.degraded_share:.0%}"
        )
    if _clearly_above(
        build.errors_per_session, before.errors_per_session, WORSE_ERRORS_PER_SESSION
    ):
        build.worse_because.append(
            f"{build.errors_per_session:.2f} errors per session against "
            f"{before.errors_per_session:.2f}"
        )
    if build.worse_because:
        build.worse_than = before.build_id


def _clearly_above(value: float, before: float, margin: float) -> bool:
    return value >= max(before * WORSE_RATIO, before + margin)


# ---------------------------------------------------------------------------------------------
# Rendering, for the page and its live updates alike


def window_param(value: str | None) -> str:
    """The window a page asked for, or the default for anything else."""
    return value if value in WINDOWS else DEFAULT_WINDOW


def window_links(*, path: str, current: str, params: dict[str, str]) -> list[dict]:
    """A link per window, keeping the page's other filters."""
    links = []
    for name in WINDOWS:
        query = urlencode({**{k: v for k, v in params.items() if v}, "window": name})
        links.append({"label": WINDOW_LABELS[name], "url": f"{path}?{query}",
                      "current": name == current})  # fmt: skip
    return links


def panel_html(
    *, project_id: object, window: PanelWindow, params: dict[str, str], oob: bool
) -> SafeString:
    """The panel for one project and window, read from the merged figures: a few queries over
    at most about 30 day rows and 48 hour rows per key, whatever the window's events.
    ``params`` are the page's other filters, which its links and its custom range keep."""
    path = reverse("project", args=[project_id])
    kept = {k: v for k, v in params.items() if v and k not in PANEL_OWN}
    links = window_links(path=path, current=window.name, params=kept)
    figures = project_quality(project_id=project_id, window=window.name, since=window.since,
                              until=window.until)  # fmt: skip
    shown = figures["window"]
    context = {
        "panel": panel_build(figures), "windows": links, "oob": oob, "path": path,
        "window": window, "kept": kept,
        # Live redraws keep the form as the reader left it (htmx hx-preserve, by this id); other
        # filters make another form, so another id.
        "custom_id": "quality-custom-" + hashlib.sha256(
            urlencode(sorted(kept.items())).encode()).hexdigest()[:12],
        "range_from": window.asked[0] or _local(shown["start"]),
        "range_to": window.asked[1] or _local(shown["end"]),
        "widened": window.name == CUSTOM and (window.since, window.until) != (shown["start"],
                                                                              shown["end"]),
    }  # fmt: skip
    html = render_to_string(TEMPLATE, context)
    return mark_safe(html.strip())  # the template escaped it; strip() only drops its margins
