from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from errorsink.api import sentry_ingest

urlpatterns = [
    # Browsers ask for /favicon.ico whatever the page links; a 404 on every page is noise.
    path("favicon.ico", RedirectView.as_view(url=static("errorsink/favicon.svg"), permanent=True)),
    path("api/v1/", include("errorsink.api.urls")),
    # Sentry SDKs post to /api/<numeric id>/envelope/ (and /store/): docs/sentry.md.
    path("api/<int:sentry_id>/envelope/", sentry_ingest.envelope, name="sentry-envelope"),
    path("api/<int:sentry_id>/store/", sentry_ingest.store, name="sentry-store"),
    path("", include("dashboard.urls_settings")),
    path("", include("dashboard.urls_api_keys")),
    path("", include("dashboard.urls")),
]

# JSON envelope for /api/ paths, Django's own pages for the dashboard.
handler404 = "errorsink.api.errors.handler404"
handler500 = "errorsink.api.errors.handler500"
