"""The HTTP API under /api/v1 (DESIGN section 3)."""

from django.urls import path

from errorsink.api.main import api

urlpatterns = [path("", api.urls)]
