"""The one place that validates, changes and records a project's session settings.

The dashboard, the HTTP API and the CLI (through the API) all call these functions.
"""

from __future__ import annotations

import unicodedata

from django.db import transaction

from errorsink.models import Project, SessionSettings, SettingsChange

ERROR_MESSAGE_MAX = 500
IDLE_TIMEOUT_MIN = 10
IDLE_TIMEOUT_MAX = 3600
EDITABLE_FIELDS = ("error_message", "idle_timeout_seconds")


class SettingsInvalid(Exception):
    """Raised with {field: message} for every invalid field; nothing is changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def clean_error_message(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > ERROR_MESSAGE_MAX:
        raise ValueError(f"must be at most {ERROR_MESSAGE_MAX} characters (got {len(text)})")
    for char in text:
        # Cc covers tabs, newlines and the rest; Zl/Zp are Unicode's own line breaks. The
        # runner speaks a single line of text.
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return text


def clean_idle_timeout(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a whole number of seconds")
    text = str(value).strip()
    # int() would also take "3_0" or "٣٠"; only plain ASCII digits are a number of seconds here.
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError("must be a whole number of seconds")
    seconds = int(text)
    if not IDLE_TIMEOUT_MIN <= seconds <= IDLE_TIMEOUT_MAX:
        raise ValueError(f"must be between {IDLE_TIMEOUT_MIN} and {IDLE_TIMEOUT_MAX} seconds")
    return seconds


CLEANERS = {"error_message": clean_error_message, "idle_timeout_seconds": clean_idle_timeout}


def session_settings_get(*, project: Project) -> SessionSettings:
    settings, _ = SessionSettings.objects.get_or_create(project=project)
    return settings


def session_settings_validate(changes: dict[str, object]) -> dict[str, object]:
    """Clean every field of `changes`, or raise SettingsInvalid naming each bad one."""
    cleaned, errors = {}, {}
    for field, value in changes.items():
        if field not in CLEANERS:
            errors[field] = f"unknown setting; editable settings are {', '.join(EDITABLE_FIELDS)}"
            continue
        try:
            cleaned[field] = CLEANERS[field](value)
        except ValueError as exc:
            errors[field] = f"{field} {exc}"
    if errors:
        raise SettingsInvalid(errors)
    return cleaned


@transaction.atomic
def session_settings_update(
    *, project: Project, changes: dict[str, object], user=None, actor: str | None = None
) -> SessionSettings:
    """Validate and apply `changes`, recording one history row per field that changed."""
    cleaned = session_settings_validate(changes)
    settings = SessionSettings.objects.select_for_update().get_or_create(project=project)[0]
    who = actor or (user.get_username() if user is not None else "system")
    history = []
    for field, new in cleaned.items():
        old = getattr(settings, field)
        if old == new:
            continue
        setattr(settings, field, new)
        history.append(
            SettingsChange(project=project, user=user, actor=who, field=field,
                           old_value=str(old), new_value=str(new))
        )  # fmt: skip
    if history:
        settings.save()
        SettingsChange.objects.bulk_create(history)
    return settings


def session_settings_history(*, project: Project, limit: int = 10) -> list[SettingsChange]:
    return list(project.settings_changes.select_related("user")[:limit])
