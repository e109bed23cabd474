"""One request as the door's handlers see it: its headers, its id, and its body on demand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from errorsink.door.body import body_read


@dataclass
class DoorRequest:
    method: str
    path: str
    query_string: bytes
    headers: dict[bytes, bytes]  # names lower-cased, as ASGI gives them
    request_id: str
    receive: Callable[[], Awaitable[dict]]
    body: bytes | None = None
    key_label: str = "-"  # the API key's prefix, for the access log

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")

    def query(self, name: str) -> str:
        values = parse_qs(self.query_string.decode("latin-1")).get(name)
        return values[0] if values else ""

    async def read(self) -> bytes:
        """The decoded body (read once); raises BodyRefused."""
        if self.body is None:
            self.body = await body_read(self.receive, self.headers)
        return self.body
