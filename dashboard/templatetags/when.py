"""Times and durations as every page shows them: a date, a time and the zone; durations in the
units a person reads ("1 min 23 s"), the exact value kept in the title."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def moment(value: datetime | None, relative: bool = False) -> SafeString | str:
    """``<time>`` with the full UTC date and time; ``relative`` lets the page's script show
    "3 minutes ago" in its place (the title keeps the date)."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{}"{}>{}</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
        SafeString(" data-relative") if relative else "",
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


@register.filter
def duration_ms(value: object) -> str:
    """850 → "850 ms", 83421 → "1 min 23 s", 3_720_000 → "1 h 2 min"; not a number: as is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    millis = round(value)
    if abs(millis) < 1000:
        return f"{millis} ms"
    seconds = millis / 1000
    if abs(seconds) < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
