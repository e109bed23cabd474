"""A project's Sentry DSN (docs/sentry.md): a numeric id, since Sentry SDKs require one in
the DSN, and a public key that owners can rotate. Made on first use."""

from __future__ import annotations

import secrets

from django.db import models


class SentryKey(models.Model):
    # The DSN's numeric project id: this row's own id.
    id = models.BigAutoField(primary_key=True)
    project = models.OneToOneField(
        "errorsink.Project", on_delete=models.CASCADE, related_name="sentry_key"
    )
    public_key = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "errorsink_sentry_key"


def _new_key() -> str:
    return secrets.token_hex(16)


def sentry_key_for(project) -> SentryKey:
    key, _ = SentryKey.objects.get_or_create(project=project, defaults={"public_key": _new_key()})
    return key


def sentry_key_rotate(project) -> SentryKey:
    """A new public key: SDKs still sending the old one get 403 from now on."""
    from django.utils import timezone

    key = sentry_key_for(project)
    key.public_key, key.rotated_at = _new_key(), timezone.now()
    key.save(update_fields=["public_key", "rotated_at"])
    return key


def sentry_dsn(key: SentryKey, base_url: str) -> str:
    """``http://<public key>@<host>:<port>/<numeric id>`` for the dashboard at ``base_url``."""
    scheme, _, host = base_url.rstrip("/").partition("://")
    return f"{scheme}://{key.public_key}@{host}/{key.id}"
