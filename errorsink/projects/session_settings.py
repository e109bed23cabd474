"""The one place that validates, changes and records a project's session settings, and its
event retention and ingest quota, which owners edit beside them.

The dashboard, the HTTP API and the CLI (through the API) all call these functions. The crash
message and idle timeout are stored in the project's SessionSettings row and reach agents on
the next deploy; the retention is stored on the project and the next prune applies it.
"""

from __future__ import annotations

import unicodedata

from django.db import transaction

from errorsink.projects.models import (
    RETENTION_DAYS_MAX,
    RETENTION_DAYS_MIN,
    Project,
    SessionSettings,
    SettingsChange,
)

ERROR_MESSAGE_MAX = 500
IDLE_TIMEOUT_MIN = 10
IDLE_TIMEOUT_MAX = 3600
EDITABLE_FIELDS = ("error_message", "idle_timeout_seconds", "retention_days", "ingest_quota")
# Stored on the project, not its SessionSettings row.
PROJECT_FIELDS = ("retention_days", "ingest_quota")
INGEST_QUOTA_MAX = 10_000_000


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


def _clean_whole_number(value: object, *, low: int, high: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a whole number of {unit}")
    text = str(value).strip()
    # int() would also take "3_0" or "٣٠"; only plain ASCII digits are a number here.
    if not (text.isascii() and text.removeprefix("-").isdigit()):
        raise ValueError(f"must be a whole number of {unit}")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"must be between {low} and {high} {unit}")
    return number


def clean_idle_timeout(value: object) -> int:
    return _clean_whole_number(value, low=IDLE_TIMEOUT_MIN, high=IDLE_TIMEOUT_MAX, unit="seconds")


def clean_retention_days(value: object) -> int:
    return _clean_whole_number(value, low=RETENTION_DAYS_MIN, high=RETENTION_DAYS_MAX, unit="days")


def clean_ingest_quota(value: object) -> int | None:
    """Events a second; None (or nothing typed) is the operator's default, 0 no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _clean_whole_number(value, low=0, high=INGEST_QUOTA_MAX, unit="events a second")


CLEANERS = {
    "error_message": clean_error_message,
    "idle_timeout_seconds": clean_idle_timeout,
    "retention_days": clean_retention_days,
    "ingest_quota": clean_ingest_quota,
}


def session_settings_get(*, project: Project) -> SessionSettings:
    """The project's settings; ``settings.project`` is the project given (its retention)."""
    settings, _ = SessionSettings.objects.get_or_create(project=project)
    settings.project = project
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
    """Validate and apply `changes`, recording one history row per field that changed.

    Returns the settings with their project as saved (``settings.project.retention_days``).
    """
    cleaned = session_settings_validate(changes)
    # Both rows locked and read fresh in one query, so concurrent saves record true old values.
    # NO KEY: ingest's foreign-key checks on the project (KEY SHARE) are never blocked.
    locked = SessionSettings.objects.select_for_update(no_key=True, of=("self", "project"))
    settings = locked.select_related("project").get_or_create(project=project)[0]
    who = actor or (user.get_username() if user is not None else "system")
    history = []
    for field, new in cleaned.items():
        target = settings.project if field in PROJECT_FIELDS else settings
        old = getattr(target, field)
        if old == new:
            continue
        setattr(target, field, new)
        history.append(
            SettingsChange(project=project, user=user, actor=who, field=field,
                           old_value=_recorded(old), new_value=_recorded(new))
        )  # fmt: skip
    if history:
        settings.save()  # its updated_at tells when any of them last changed
        project_fields = [change.field for change in history if change.field in PROJECT_FIELDS]
        if project_fields:
            settings.project.save(update_fields=project_fields)
        SettingsChange.objects.bulk_create(history)
    return settings


def _recorded(value: object) -> str:
    return "default" if value is None else str(value)  # an ingest quota left to the server


def session_settings_history(*, project: Project, limit: int = 10) -> list[SettingsChange]:
    return list(project.settings_changes.select_related("user")[:limit])
