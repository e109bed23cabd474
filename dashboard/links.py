"""The dashboard's addresses as alert notifications link to them (errorsink/alerts/links.py)."""

from __future__ import annotations

import uuid

from django.urls import reverse


class ReversedLinks:
    def project(self, project_id: uuid.UUID) -> str:
        return reverse("project", args=[project_id])

    def issue(self, project_id: uuid.UUID, issue_id: int) -> str:
        return reverse("issue", args=[project_id, issue_id])
