from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    # Browsers ask for /favicon.ico whatever the page links; a 404 on every page is noise.
    path("favicon.ico", RedirectView.as_view(url=static("errorsink/favicon.svg"), permanent=True)),
    path("api/v1/", include("errorsink.api.urls")),
    # The ingest routes (POST .../events, .../events/batch, Sentry's /api/<id>/envelope/ and
    # /store/) never reach Django: errorsink/door answers them (config/asgi.py).
    path("", include("dashboard.urls_settings")),
    path("", include("dashboard.urls_api_keys")),
    path("", include("dashboard.urls_accounts")),
    path("", include("dashboard.urls")),
]

# JSON envelope for /api/ paths, Django's own pages for the dashboard.
handler404 = "errorsink.api.errors.handler404"
handler500 = "errorsink.api.errors.handler500"
