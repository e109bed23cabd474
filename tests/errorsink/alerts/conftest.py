"""A real HTTP receiver on loopback for the delivery tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest


@pytest.fixture
def receiver(settings) -> Iterator[tuple[str, list]]:
    """A receiver on loopback, which errorsink sends to only because the operator allows it."""
    settings.ERRORSINK_WEBHOOK_ALLOW = "127.0.0.1"
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append((self.path, orjson.loads(self.rfile.read(
                int(self.headers["Content-Length"])))))  # fmt: skip
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest")
            else:
                self.send_response(500 if self.path == "/fail" else 200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
