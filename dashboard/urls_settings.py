"""Session settings panel routes (issue: session settings)."""

from django.urls import path

from dashboard import settings_views

urlpatterns = [
    path(
        "projects/<uuid:project_id>/settings/",
        settings_views.session_settings,
        name="session-settings",
    ),
]
