"""ASGI entry point: Django for HTTP, Channels for the live dashboard websockets."""

import gc
import os
import sys

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with its middleware chain run as one synchronous call.

    errorsink's middleware and views are all synchronous. The stock handler builds an async
    chain around them, adapting at each sync middleware and back at the last one, so a request
    moves between the event loop and a thread three times and the loop, which also pushes to
    every live page, runs part of it. Built synchronously, the chain and the view run as one
    call in the request's thread (where Django runs a sync view anyway); the loop only reads
    the body and sends the answer (docs/architecture.md, the front door)."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response)(request)


django.setup(set_prefix=False)
django_asgi_app = OneHopASGIHandler()


def _name_missing_statuses() -> None:
    """Daphne takes reason phrases from Twisted's table, which lacks the API's 422 and 429
    (the status line would read "422 Unknown Status")."""
    try:
        from twisted.web import http
    except ImportError:  # another ASGI server
        return
    http.RESPONSES.setdefault(422, b"Unprocessable Content")
    http.RESPONSES.setdefault(429, b"Too Many Requests")


def _answer_over_long_lines() -> None:
    """Twisted drops the connection when a request line or a header passes 16 KiB (a 100 KB
    query string): the client sees a reset, not a reason. Answer 414 (the request line) or 431
    (a header) first, as the HTTP RFCs ask, then close."""
    try:
        from twisted.web import http
    except ImportError:  # another ASGI server
        return

    def line_too_long(channel, line: bytes) -> None:
        first = getattr(channel, "_HTTPChannel__first_line", True)
        status = b"414 URI Too Long" if first else b"431 Request Header Fields Too Large"
        body = b"The request line or a header is longer than 16 KiB.\n"
        channel.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                                + body)  # fmt: skip
        channel.transport.loseConnection()

    http.HTTPChannel.lineLengthExceeded = line_too_long


_name_missing_statuses()
_answer_over_long_lines()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.raw_socket import RawSocketMiddleware  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from errorsink.door.app import FrontDoor  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The ingest routes are answered by the front door; everything else by Django.
        "http": FrontDoor(django_asgi_app),
        "websocket": RawSocketMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Everything loaded so far (Django, the apps, every module) lives as long as the process: move it
# out of the collector's sight. Otherwise each full collection walks it all and stalls the event
# loop for tens of milliseconds, which was the front door's p99 (docs/benchmarks.md).
gc.freeze()
# What is left is mostly the open pages' own objects (200 pages: 70,000), long-lived too, yet a
# full collection walks them all: 75 to 100 ms with every page waiting, five times a minute at
# 2,000 events/s. Ten times as many younger collections between two full ones make that about
# one in two minutes; the younger collections, which find most garbage, are unchanged.
gc.set_threshold(700, 10, 100)

# The event loop writes each push to 200 sockets, and every write gives up the GIL. With
# Python's default 5 ms switch interval, a thread rendering a part (or an API request) kept it
# up to 5 ms each time before the loop got it back: under load, pushes fell seconds behind
# (docs/benchmarks.md, the load benchmark with and without). 0.5 ms bounds that wait.
sys.setswitchinterval(0.0005)
