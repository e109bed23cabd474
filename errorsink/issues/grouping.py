"""Which issue an error belongs to (docs/issues.md): its fingerprint, pure and explainable.

The default fingerprint is the code, the message with its variable parts masked, and the top
frame of the stack where there is one. The parts are kept on the issue in words, so its page
can say why its events were grouped; the key is a 128-bit hash of them.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

# A custom fingerprint may name the default in its place, as Sentry's does.
DEFAULT_TOKEN = "{{ default }}"
MESSAGE_MASK_LIMIT = 500
FRAME_CACHED_CHARS = 400
# What a remembered group may hold: its code, masked message, frame and custom parts.
GROUP_CACHED_CHARS = 2000
# What a remembered error may hold: its message, stack and custom parts.
ERROR_CACHED_CHARS = 4000

# One pass over the message, the first alternative that matches at a place winning: a URL may
# hold numbers and hex, a quoted value anything, a UUID digits.
_MASK = re.compile(
    r"(?P<url>\b[a-z][a-z0-9+.-]*://\S+)"
    r"|(?P<quoted>\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`)"
    r"|(?P<uuid>\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b)"
    # 0x-prefixed, or 8+ hex digits with both a digit and a letter ("deadbeef" is a word).
    r"|(?P<hex>\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b)"
    # Digits starting a word: "500ms" is a number with a unit, "v2" and "http2" are names.
    r"|(?P<num>\b\d+(?:[.,:]\d+)*)",
    re.IGNORECASE,
)
_MARKERS = {"url": "<url>", "quoted": "<quoted>", "uuid": "<uuid>", "hex": "<hex>",
            "num": "<num>"}  # fmt: skip
# Without a quote, a URL or a run of hex digits only numbers can be masked, and a pattern of
# numbers alone scans a message four times faster than the whole alternation (which tries
# five alternatives at each word): the common message takes the short way, to the same result.
# Quotes and "://" are found by plain substring tests, faster still than a pattern.
_HEX_LIKE = re.compile(r"0[xX]|[0-9a-fA-F]{8}")
_NUMBER = re.compile(r"\b\d+(?:[.,:]\d+)*")
_WORD_CHARACTER = re.compile(r"\w")
# Digits 2 to 9 read as 1. No pattern above tells digits apart but "0x", and 0 is kept: so an
# error and its digits-alike twin have the same masked spans and the same frame lines, and where
# no digit of the twin is left in its masked message or frame, both have one fingerprint.
# Done on the UTF-8 bytes: str.translate costs ten times more, and no byte of a multi-byte
# character is an ASCII digit.
_DIGITS_ALIKE = bytes.maketrans(b"23456789", b"11111111")
# "at handler (src/agent.js:10:5)" or "at src/agent.js:10:5": JavaScript, innermost first.
_JS_FRAME = re.compile(r"^\s*at\s+(?:(?P<function>.+?)\s+\()?(?P<file>[^()\s]+?)(?::\d+)*\)?\s*$")
# 'File "agent/handler.py", line 10, in on_message': Python, innermost last.
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<function>\S+)')


def message_masked(message: str) -> str:
    """The message with numbers, UUIDs, hex ids, quoted values and URLs replaced by markers."""
    masked = message[:MESSAGE_MASK_LIMIT]
    if ('"' in masked or "'" in masked or "`" in masked or "://" in masked
            or _HEX_LIKE.search(masked)):  # fmt: skip
        masked = _MASK.sub(lambda match: _MARKERS[match.lastgroup], masked)
    else:
        masked = _NUMBER.sub("<num>", masked)
    return " ".join(masked.split())


def stack_top_frame(stack: str) -> str:
    """The innermost frame as "file in function", without line numbers (they move with every
    build); "" when the stack has no frame errorsink can read."""
    if not stack:
        return ""
    if 'File "' in stack:
        python_frames = [m for line in stack.splitlines() if (m := _PY_FRAME.match(line))]
        if python_frames:
            return _frame(python_frames[-1])
    for line in stack.splitlines():
        if line.lstrip().startswith("at"):
            # Long lines are read but not remembered: the cache stays under a few MB.
            frame = (_javascript_frame if len(line) <= FRAME_CACHED_CHARS
                     else _javascript_frame.__wrapped__)(line)  # fmt: skip
            if frame:
                return frame
    return ""


@lru_cache(maxsize=4096)
def _javascript_frame(line: str) -> str:
    # Remembered by line: the message above it varies, but the frame where an error is thrown
    # repeats, and its pattern (which must backtrack to find the file) is the costliest step.
    match = _JS_FRAME.match(line)
    if match and _WORD_CHARACTER.search(match.group("file")):  # not a placeholder such as "…"
        return _frame(match)
    return ""


def _frame(match: re.Match) -> str:
    function = match.group("function")
    return f"{match.group('file')} in {function}" if function else match.group("file")


def fingerprint_parts(
    *, code: str, message: str, stack: str, custom: list[str] | tuple[str, ...] | None = None
) -> list[str]:
    """The fingerprint in words, one "what: value" string per part."""
    return _parts(code, message_masked(message), stack_top_frame(stack),
                  tuple(custom) if custom else None)  # fmt: skip


def _parts(code: str, masked: str, frame: str, custom: tuple[str, ...] | None) -> list[str]:
    default = [f"code: {code}", f"message: {masked}"]
    if frame:
        default.append(f"frame: {frame}")
    parts = default
    if custom:
        parts = []
        for value in custom:
            parts.extend(default if value == DEFAULT_TOKEN else [f"custom: {value}"])
    # As the event's own columns keep them: PostgreSQL text and jsonb cannot hold NUL, and an
    # issue that could not be written would lose its event.
    return [part.replace("\x00", "\ufffd") if "\x00" in part else part for part in parts]


def fingerprint_key(parts: list[str]) -> str:
    """128 bits of the parts as 32 hex digits, which PostgreSQL reads as a uuid: collisions are
    out of reach. Parts never hold the separator (a control character)."""
    joined = "\x1f".join(part.replace("\x1f", " ") for part in parts)
    return hashlib.blake2b(joined.encode(), digest_size=16).hexdigest()


def fingerprint_computed(
    code: str, message: str, stack: str, custom: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    """Key and parts of an error, computed afresh."""
    parts = fingerprint_parts(code=code, message=message, stack=stack, custom=custom)
    return fingerprint_key(parts), parts


def fingerprint_cached(
    code: str, message: str, stack: str, custom: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    """Key and parts of an error, remembered: the same crash repeats, often but for a count, an
    id or a time, and its fingerprint is the ingest worker's costliest per-item step after
    validation. Remembered for every error alike but for its digits, else word for word; a
    large one is computed, so the caches' memory stays bounded (8,192 entries of a few KB)."""
    if len(message) + len(stack) + sum(map(len, custom or ())) > ERROR_CACHED_CHARS:
        return fingerprint_computed(code, message, stack, custom)
    alike = _fingerprint_alike(code, _alike(message[:MESSAGE_MASK_LIMIT]), _alike(stack), custom)
    return alike if alike is not None else _fingerprint_exact(code, message, stack, custom)


def _alike(text: str) -> bytes:
    return text.encode().translate(_DIGITS_ALIKE)


@lru_cache(maxsize=8192)
def _fingerprint_alike(
    code: str, message: bytes, stack: bytes, custom: tuple[str, ...] | None
) -> tuple[str, list[str]] | None:
    masked = message_masked(message.decode())
    frame = stack_top_frame(stack.decode())
    if "1" in masked or "1" in frame:
        return None  # a digit left ("v2", "chunk-3.js") is the error's own, unknown to its twin
    return _fingerprint_grouped(code, masked, frame, custom)


# Smaller: only errors whose masked message or frame keeps a digit come this far.
@lru_cache(maxsize=2048)
def _fingerprint_exact(
    code: str, message: str, stack: str, custom: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    return _fingerprint_grouped(code, message_masked(message), stack_top_frame(stack), custom)


def _fingerprint_grouped(
    code: str, masked: str, frame: str, custom: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    if len(code) + len(masked) + len(frame) + sum(map(len, custom or ())) > GROUP_CACHED_CHARS:
        return _fingerprint_of.__wrapped__(code, masked, frame, custom)  # too large to remember
    return _fingerprint_of(code, masked, frame, custom)


@lru_cache(maxsize=8192)
def _fingerprint_of(
    code: str, masked: str, frame: str, custom: tuple[str, ...] | None
) -> tuple[str, list[str]]:
    # Remembered by the masked message: errors that differ only in an id or a count miss the
    # cache above but share this entry, and so skip building and hashing their parts.
    parts = _parts(code, masked, frame, custom)
    return fingerprint_key(parts), parts
