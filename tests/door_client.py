"""Requests to the real ASGI application in process, shaped like Django's test client, for the
routes the front door answers outside Django (errorsink/door).

Each request runs through asgiref's async_to_sync from the test's thread, so the door's grant
loads (sync_to_async, thread-sensitive) run on that thread and see the test's transaction.
"""

from __future__ import annotations

import httpx
import orjson
from asgiref.sync import async_to_sync

from errorsink.door.queueing import door_connections_close


class DoorResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content = response.content
        self.headers = response.headers

    def json(self):
        return orjson.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def has_header(self, name: str) -> bool:
        return name in self.headers

    def get(self, name: str, default=None):
        return self.headers.get(name, default)


class DoorClient:
    def __init__(self, host: str = "localhost") -> None:
        self.host = host

    def post(self, path: str, data=b"", content_type: str = "application/json",
             headers: dict | None = None, query: str = "") -> DoorResponse:  # fmt: skip
        body = data if isinstance(data, bytes) else data.encode() if isinstance(data, str) else (
            orjson.dumps(data))  # fmt: skip
        return self.request("POST", path, body, {"Content-Type": content_type, **(headers or {})})

    def get(self, path: str, headers: dict | None = None) -> DoorResponse:
        return self.request("GET", path, b"", headers or {})

    def request(self, method: str, path: str, body: bytes, headers: dict) -> DoorResponse:
        return DoorResponse(async_to_sync(self._request)(method, path, body, headers))

    async def _request(self, method: str, path: str, body: bytes, headers: dict):
        from config.asgi import application

        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{self.host}") as c:
                return await c.request(method, path, content=body, headers=headers)
        finally:
            await door_connections_close()
