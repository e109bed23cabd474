"""The HTTP API under /api/v1 (issue: API and CLI)."""

urlpatterns: list = []
