"""API key management pages (issue: API and CLI)."""

urlpatterns: list = []
