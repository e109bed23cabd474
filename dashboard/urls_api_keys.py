"""API key management pages (owners create and revoke; members read)."""

from django.urls import path

from dashboard import api_keys_views

urlpatterns = [
    path("projects/<uuid:project_id>/api-keys/", api_keys_views.api_keys, name="api-keys"),
    path(
        "projects/<uuid:project_id>/api-keys/<int:key_id>/revoke/",
        api_keys_views.api_key_revoke_view,
        name="api-key-revoke",
    ),
]
