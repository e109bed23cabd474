from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("errorsink.api.urls")),
    path("", include("dashboard.urls_settings")),
    path("", include("dashboard.urls_api_keys")),
    path("", include("dashboard.urls")),
]

# JSON envelope for /api/ paths, Django's own pages for the dashboard.
handler404 = "errorsink.api.errors.handler404"
handler500 = "errorsink.api.errors.handler500"
