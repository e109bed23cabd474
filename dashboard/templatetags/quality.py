"""Number formats of the quality panel (templates/dashboard/partials/quality_panel.html)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(share: float | None) -> str:
    """0.1234 -> "12.3%"; whole percentages lose the decimal ("8%"), tiny ones say so."""
    if share is None:
        return ""
    value = share * 100
    if 0 < value < 0.1:
        return "<0.1%"
    text = f"{value:.1f}"
    return f"{text.removesuffix('.0')}%"


@register.filter
def points(change: float | None) -> str:
    """The size of a change of share in percentage points: -0.034 -> "3.4 points"."""
    if change is None:
        return ""
    text = f"{abs(change) * 100:.1f}".removesuffix(".0")
    return f"{text} point{'' if text == '1' else 's'}"


@register.filter
def share_width(share: float) -> str:
    """A share as an SVG width out of 100, at least a sliver when not zero."""
    width = max(0.0, min(1.0, share)) * 100
    return f"{max(width, 1.0) if share > 0 else 0:.1f}"
