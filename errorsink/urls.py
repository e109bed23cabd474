from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("errorsink.api.urls")),
    path("", include("dashboard.urls_settings")),
    path("", include("dashboard.urls_api_keys")),
    path("", include("dashboard.urls")),
]
