"""Session settings panel routes (issue: session settings)."""

urlpatterns: list = []
