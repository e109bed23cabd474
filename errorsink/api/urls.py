"""The HTTP API under /api/v1 (docs/api.md)."""

from django.urls import path

from errorsink.api.main import api

urlpatterns = [path("", api.urls)]
