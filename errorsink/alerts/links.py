"""Where a notification leads. The dashboard owns its addresses: it registers a builder of them
when it starts (dashboard/apps.py), and the alert code is handed that builder, so nothing here
resolves a URL of the web layer."""

from __future__ import annotations

import uuid
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class DashboardLinks(Protocol):
    """Paths (no host) of the dashboard's pages a notification links to."""

    def project(self, project_id: uuid.UUID) -> str: ...

    def issue(self, project_id: uuid.UUID, issue_id: int) -> str: ...


_registered: DashboardLinks | None = None


def links_register(links: DashboardLinks) -> None:
    global _registered
    _registered = links


def links_registered() -> DashboardLinks:
    if _registered is None:
        raise ImproperlyConfigured("no dashboard links registered: is 'dashboard' installed?")
    return _registered
