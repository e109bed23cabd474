"""The code catalog: every error, warning and termination code errorsink knows, loaded once.

The data lives in ``catalog.json`` beside this module, one entry per line, in a stable order
(VoiceThere, OneBudd, gecx, then Telnyx errors, warnings and terminations). ``GET
/api/v1/codes`` serves ``all_codes()``; the dashboard and the API both show ``lookup_event()``
beside each stored event, so page and API never name different entries.

Keys. An entry is identified by ``(sdk, code)``; lookup falls back to the code alone because
queue items such as ``session_error`` and ``session_end`` do not name an SDK. The same code in
two SDKs would be two entries, never one overwriting the other: loading fails on a duplicate
``(sdk, code)``. Telnyx numeric codes are decimal strings (``"31002"``) with their symbolic
name in ``name`` (``"HIGH_JITTER"``); for symbolic codes ``name == code``. WebSocket close codes
are keyed ``"ws:<number>"`` (``"ws:1006"``, name ``"WS_ABNORMAL_CLOSURE"``) so that they can
never be mistaken for a Telnyx numeric code or a call-termination cause.

How each SDK's tables became kinds, severities and flags is written in docs/formats.md ("Code
catalog"); a stored telnyx.error takes its recoverable from the event, not from here.
"""

import json
from dataclasses import dataclass
from pathlib import Path

SDKS = ("voicethere", "onebudd", "gecx", "telnyx")
KINDS = ("error", "warning", "termination", "info")
SEVERITIES = ("low", "medium", "high", "critical")
SOURCES = ("agent", "runner", "provisioning", "client")


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    name: str
    sdk: str
    kind: str
    severity: str
    recoverable: bool
    retryable: bool | None
    source: str
    description: str
    fix: str


def _check(info: CodeInfo) -> CodeInfo:
    # A typo in the JSON should fail at import, not show up as a wrong badge on the dashboard.
    if (
        info.sdk not in SDKS
        or info.kind not in KINDS
        or info.severity not in SEVERITIES
        or info.source not in SOURCES
        or type(info.recoverable) is not bool
        or info.retryable not in (True, False, None)
    ):
        raise ValueError(f"catalog.json: bad entry {info!r}")
    return info


def _index(
    rows: list[dict],
) -> tuple[list[CodeInfo], dict[tuple[str, str], CodeInfo], dict[str, CodeInfo]]:
    codes = [_check(CodeInfo(**row)) for row in rows]
    by_key: dict[tuple[str, str], CodeInfo] = {}
    by_code: dict[str, CodeInfo] = {}
    for info in codes:
        if (info.sdk, info.code) in by_key:
            raise ValueError(f"catalog.json: duplicate code {info.code!r} for sdk {info.sdk!r}")
        by_key[(info.sdk, info.code)] = info
        # The first SDK in catalog order wins the code-only fallback; the others stay reachable
        # by (sdk, code).
        by_code.setdefault(info.code, info)
    return codes, by_key, by_code


_CODES, _BY_KEY, _BY_CODE = _index(
    json.loads(Path(__file__).with_name("catalog.json").read_text(encoding="utf-8"))
)
_TELNYX_CODES_BY_NAME: dict[str, dict[str, str]] = {}  # name -> kind -> numeric code
for _info in _CODES:
    if _info.sdk == "telnyx" and _info.code.isdigit():
        _TELNYX_CODES_BY_NAME.setdefault(_info.name, {})[_info.kind] = _info.code


def lookup(code: str, *, sdk: str | None = None, fallback: bool = True) -> CodeInfo | None:
    """The entry for ``code`` of ``sdk``; else (unless ``fallback=False``) any SDK's entry."""
    if sdk is not None:
        info = _BY_KEY.get((sdk, code))
        if info is not None or not fallback:
            return info
    return _BY_CODE.get(code)


def telnyx_code_for_name(name: str, *, kind: str | None = None) -> str | None:
    """The numeric Telnyx code of a symbolic name: ``"HIGH_JITTER"`` -> ``"31002"``.

    A name both an error and a warning carry (``SESSION_NOT_REATTACHED``: error 48501, warning
    35001 before SDK 2.27.2) gives the code of ``kind`` ("error" or "warning"); without one, or
    for a name of the other kind only, whichever there is, the error's first.
    """
    codes = _TELNYX_CODES_BY_NAME.get(name)
    if not codes:
        return None
    return (codes.get(kind) if kind else None) or codes.get("error") or codes.get("warning")


def lookup_event(code: str, details: object, *, kind: str | None = None) -> CodeInfo | None:
    """The entry of a stored event: by its SDK (``details["sdk"]``) and code, else any SDK's,
    else, for a Telnyx code kept by name (``"HIGH_JITTER"``), the entry of its number for the
    event's ``kind``."""
    sdk = details.get("sdk") if isinstance(details, dict) else None
    info = lookup(code, sdk=sdk if isinstance(sdk, str) else None)
    if info is None and (number := telnyx_code_for_name(code, kind=kind)):
        info = lookup(number, sdk="telnyx")
    return info


def all_codes() -> list[CodeInfo]:
    """Every entry in catalog order (a fresh list; the entries themselves are immutable)."""
    return list(_CODES)
