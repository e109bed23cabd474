"""Sentry's own endpoints (docs/sentry.md): unmodified Sentry SDKs post envelopes (and older
ones single events) here, authenticated by the project's public key. Their events go onto the
same queue as every other item, as the ``sentry`` SDK format (errorsink/ingest/formats/
sentry.py), validated first so that what is accepted is stored; other item types (sessions,
transactions, client reports, attachments) are accepted and skipped.

Answers are Sentry's: ``{"id": ...}`` or ``{"detail": ...}`` with 400, 401, 403, 413 or 429
(with ``Retry-After`` and ``X-Sentry-Rate-Limits``, which Sentry SDKs obey by pausing).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import brotli
import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from errorsink.api.ratelimit import ratelimit_hit
from errorsink.ingest.accept import queue_item
from errorsink.ingest.formats import BadItem
from errorsink.ingest.queue import enqueue
from errorsink.sentry.events import sentry_item
from errorsink.sentry.keys import SentryKey

log = logging.getLogger("errorsink.api")

MAX_DECOMPRESSED_BYTES = 20 * 1024 * 1024
EVENT_ITEM_TYPES = ("event",)


class SentryError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class Unpacked:
    """What a body held: its events in order, why any item was refused, and where the framing
    broke (the items after that point cannot be found)."""

    events: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    broken: str | None = None


@csrf_exempt
@require_POST
def envelope(request: HttpRequest, sentry_id: int) -> JsonResponse:
    return _answer(request, sentry_id, _envelope_unpack)


@csrf_exempt
@require_POST
def store(request: HttpRequest, sentry_id: int) -> JsonResponse:
    return _answer(request, sentry_id, lambda body: Unpacked(events=[_json(body, "the event")]))


def _answer(request: HttpRequest, sentry_id: int, unpack) -> JsonResponse:
    """Every valid event is queued whatever else the body holds; the answer is 200 (with the
    reasons of any event refused) unless the framing broke or nothing in it was an acceptable
    event (then 400 naming the first reason). Errors, even unexpected ones, in Sentry's form."""
    try:
        return _answered(request, sentry_id, unpack)
    except Exception:
        log.exception("the Sentry endpoint failed on a request")
        return JsonResponse({"detail": "internal error; the request was not accepted"}, status=500)


def _answered(request: HttpRequest, sentry_id: int, unpack) -> JsonResponse:
    try:
        key = _authorised(request, sentry_id)
        unpacked = unpack(_body(request))
        queued, first_id, refused = _enqueue(unpacked.events, str(key.project_id))
        refused = unpacked.refused + refused
        if unpacked.broken:
            kept = f"; the {len(unpacked.events)} event(s) before it were accepted"
            raise SentryError(400, unpacked.broken + (kept if unpacked.events else ""))
        if not queued and refused:
            raise SentryError(400, f"no valid event in the request: {refused[0]}")
    except SentryError as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status, headers=exc.headers)
    return JsonResponse({"id": first_id, **({"refused": refused} if refused else {})})


def _authorised(request: HttpRequest, sentry_id: int) -> SentryKey:
    public_key = request.GET.get("sentry_key") or _auth_header_key(
        request.headers.get("X-Sentry-Auth", "")
    )
    if not public_key:
        raise SentryError(401, "missing authorization information")
    key = SentryKey.objects.filter(id=sentry_id, public_key=public_key).first()
    if key is None:
        raise SentryError(403, "invalid api key")
    limit = settings.ERRORSINK_SENTRY_RATE_LIMIT
    retry_after = ratelimit_hit(bucket=f"sentry:{key.id}", limit=limit)
    if retry_after is not None:
        # "<seconds>::key": every category, this DSN's key (Sentry's rate-limit header grammar).
        raise SentryError(
            429,
            f"rate limit exceeded; retry in {retry_after}s",
            headers={
                "Retry-After": str(retry_after),
                "X-Sentry-Rate-Limits": f"{retry_after}::key",
            },
        )
    return key


def _auth_header_key(header: str) -> str:
    # "Sentry sentry_key=abc, sentry_version=7, sentry_client=sentry.python/2.19.0"
    _, _, pairs = header.partition(" ")
    for pair in pairs.split(","):
        name, _, value = pair.strip().partition("=")
        if name == "sentry_key":
            return value.strip()
    return ""


def _body(request: HttpRequest) -> bytes:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise SentryError(413, "request body too large") from None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        data = raw
    elif encoding in ("gzip", "deflate"):
        data = _inflate(raw, encoding)
    elif encoding == "br":
        data = _unbrotli(raw)
    else:
        raise SentryError(400, f"unsupported Content-Encoding {encoding!r}")
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise SentryError(413, f"body over {MAX_DECOMPRESSED_BYTES} bytes")
    return data


def _inflate(raw: bytes, encoding: str) -> bytes:
    """Decompressed in steps with a cap: a small body that would inflate past it (a bomb) is
    refused with 413 having produced at most the cap, never the whole."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(raw, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise SentryError(400, f"body is not valid {encoding}: {exc}") from None
    if len(data) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
        raise SentryError(413, f"body inflates past {MAX_DECOMPRESSED_BYTES} bytes")
    if not inflater.eof:
        raise SentryError(400, f"body is truncated {encoding}")
    return data


def _unbrotli(raw: bytes) -> bytes:
    """As _inflate, for br: the decompressor stops producing at the cap."""
    decompressor = brotli.Decompressor()
    try:
        data = decompressor.process(raw, output_buffer_limit=MAX_DECOMPRESSED_BYTES + 1)
    except brotli.error as exc:
        raise SentryError(400, f"body is not valid br: {exc}") from None
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise SentryError(413, f"body inflates past {MAX_DECOMPRESSED_BYTES} bytes")
    if not decompressor.is_finished():
        raise SentryError(400, "body is truncated br")
    return data


def _json(data: bytes, what: str) -> dict:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SentryError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SentryError(400, f"{what} is not a JSON object")
    return value


def _envelope_unpack(body: bytes) -> Unpacked:
    """The event payloads of an envelope, in order; other item types are skipped, an event
    that is not a JSON object is refused alone. A bad header line or length ends the reading:
    the framing cannot be trusted after it."""
    header_line, _, rest = body.partition(b"\n")
    _json(header_line, "the envelope header")
    unpacked, position, number = Unpacked(), 0, 0
    try:
        while position < len(rest):
            number += 1
            line_end = rest.find(b"\n", position)
            line_end = len(rest) if line_end == -1 else line_end
            if not rest[position:line_end].strip():
                position = line_end + 1
                continue
            header = _json(rest[position:line_end], f"item {number}'s header")
            payload, position = _payload(rest, line_end + 1, header, number)
            if header.get("type") in EVENT_ITEM_TYPES:
                _event_add(unpacked, payload, number)
    except SentryError as exc:
        unpacked.broken = exc.detail
    return unpacked


def _event_add(unpacked: Unpacked, payload: bytes, number: int) -> None:
    try:
        unpacked.events.append(_json(payload, f"item {number} (an event)"))
    except SentryError as exc:
        unpacked.refused.append(exc.detail)


def _payload(rest: bytes, start: int, header: dict, number: int) -> tuple[bytes, int]:
    length = header.get("length")
    if length is None:
        end = rest.find(b"\n", start)
        end = len(rest) if end == -1 else end
        return rest[start:end], end + 1
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise SentryError(400, f"item {number}'s length is not a non-negative integer")
    if start + length > len(rest):
        raise SentryError(400, f"item {number}'s length {length} runs past the end")
    return rest[start : start + length], start + length + 1


def _enqueue(events: list[dict], project_id: str) -> tuple[int, str | None, list[str]]:
    """Validate and queue the events; a bad one is refused (with its reason) alone. Returns how
    many were queued, the first one's id, and the reasons of those refused."""
    queued, first_id, refused = [], None, []
    for event in events:
        try:
            accepted = queue_item(sentry_item(event), project_id)
        except BadItem as exc:
            log.info("sentry event refused: %s", exc.reason)
            refused.append(f"an event is not usable: {exc.reason}")
            continue
        queued.append(accepted.payload)
        first_id = first_id or accepted.event_id
    enqueue(queued)
    return len(queued), first_id, refused
