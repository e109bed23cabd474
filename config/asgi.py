"""ASGI entry point: Django for HTTP, Channels for the live dashboard websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()


def _name_missing_statuses() -> None:
    """Daphne takes reason phrases from Twisted's table, which lacks the API's 422 and 429
    (the status line would read "422 Unknown Status")."""
    try:
        from twisted.web import http
    except ImportError:  # another ASGI server
        return
    http.RESPONSES.setdefault(422, b"Unprocessable Content")
    http.RESPONSES.setdefault(429, b"Too Many Requests")


_name_missing_statuses()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
