"""Template filters of the alert pages."""

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def masked_url(url: str) -> str:
    """A receiver's URL as members see it: scheme and host, the rest hidden (a Slack
    incoming-webhook URL is itself a credential)."""
    parts = urlsplit(url or "")
    if not parts.hostname:
        return "…"
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{parts.hostname}{rest}"
