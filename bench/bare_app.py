"""The front door benchmark's reference: an ASGI app that only reads the body, parses it (as
JSON, or an OTLP export's protobuf) and LPUSHes it, under the same Daphne. What no real door
can beat on this machine."""

from __future__ import annotations

import os

import orjson
import redis.asyncio as aioredis
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

QUEUE = "bench:bare"
_client: aioredis.Redis | None = None


async def application(scope, receive, send) -> None:
    global _client
    if scope["type"] != "http":
        return
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = dict(scope["headers"])
    if headers.get(b"content-type") == b"application/x-protobuf":  # an OTLP export
        ExportTraceServiceRequest().ParseFromString(body)
    else:
        for line in body.split(b"\n"):  # an envelope is JSON lines; the events, one line
            if line:
                orjson.loads(line)
    await _client.lpush(QUEUE, body)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b'{"accepted":1}'})
