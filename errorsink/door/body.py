"""A request body read from ASGI with caps: on the bytes sent and, for gzip, deflate and br, on
the bytes they inflate to, checked as each chunk arrives (a bomb stops at the cap)."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

import brotli
from django.conf import settings

MAX_INFLATED_BYTES = 20 * 1024 * 1024


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Identity:
    def feed(self, chunk: bytes, room: int) -> bytes:
        return chunk

    def finish(self) -> None:
        return None


class _Zlib:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self.inflater = zlib.decompressobj(wbits)

    def feed(self, chunk: bytes, room: int) -> bytes:
        try:
            data = self.inflater.decompress(chunk, room + 1)
        except zlib.error as exc:
            raise BodyRefused(400, f"body is not valid {self.encoding}: {exc}") from None
        if len(data) > room or self.inflater.unconsumed_tail:
            raise BodyRefused(413, f"body inflates past {MAX_INFLATED_BYTES} bytes")
        return data

    def finish(self) -> None:
        if not self.inflater.eof:
            raise BodyRefused(400, f"body is truncated {self.encoding}")


class _Brotli:
    def __init__(self) -> None:
        self.decompressor = brotli.Decompressor()

    def feed(self, chunk: bytes, room: int) -> bytes:
        try:
            data = self.decompressor.process(chunk, output_buffer_limit=room + 1)
        except brotli.error as exc:
            raise BodyRefused(400, f"body is not valid br: {exc}") from None
        if len(data) > room or not self.decompressor.can_accept_more_data():
            raise BodyRefused(413, f"body inflates past {MAX_INFLATED_BYTES} bytes")
        return data

    def finish(self) -> None:
        if not self.decompressor.is_finished():
            raise BodyRefused(400, "body is truncated br")


def _decoder(encoding: str):
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "deflate"):
        return _Zlib(encoding)
    if encoding == "br":
        return _Brotli()
    raise BodyRefused(400, f"unsupported Content-Encoding {encoding!r}")


async def body_read(receive: Callable[[], Awaitable[dict]], headers: dict[bytes, bytes]) -> bytes:
    """The body, decoded; BodyRefused with 413 past a cap or 400 for a bad encoding."""
    sent_max = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = headers.get(b"content-length", b"").strip()
    if declared.isdigit() and int(declared) > sent_max:
        raise BodyRefused(413, f"request body over {sent_max} bytes")
    encoding = headers.get(b"content-encoding", b"").decode("latin-1").strip().lower()
    decoder = _decoder(encoding)
    cap = sent_max if isinstance(decoder, _Identity) else MAX_INFLATED_BYTES
    parts, sent, kept = [], 0, 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyRefused(400, "the client went away before the body ended")
        chunk = message.get("body", b"")
        sent += len(chunk)
        if sent > sent_max:
            raise BodyRefused(413, f"request body over {sent_max} bytes")
        if chunk:
            data = decoder.feed(chunk, cap - kept)
            kept += len(data)
            if kept > cap:
                raise BodyRefused(413, f"request body over {cap} bytes")
            parts.append(data)
        if not message.get("more_body", False):
            break
    decoder.finish()
    return b"".join(parts)
