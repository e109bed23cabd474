"""API keys: create (shown once), revoke, authenticate; only a prefix and a hash are stored.

A key reads ``es_<prefix>_<secret>``: the prefix (8 hex characters) is stored in clear so that a
key can be found with one indexed lookup and recognised in lists and logs; the secret is 256
random bits, so an unsalted SHA-256 of the whole key is enough to make a leaked database useless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from errorsink.projects.models import ApiKey, Project

KEY_PREFIX = "es_"
PREFIX_LENGTH = 8
# last_used_at is for people ("used 3 minutes ago"), not for auditing: one write a minute per
# key keeps a busy key from turning every API read into a database write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyInvalid(Exception):
    """Bad input to api_key_create: unknown scope, no scope, over-long name."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_scopes_clean(scopes: list[str] | tuple[str, ...] | str) -> list[str]:
    """The scopes in catalog order, de-duplicated; ApiKeyInvalid for an unknown or empty list."""
    if isinstance(scopes, str):
        scopes = [part for part in scopes.replace(" ", ",").split(",") if part]
    unknown = sorted(set(scopes) - set(ApiKey.SCOPES))
    if unknown:
        raise ApiKeyInvalid(
            f"unknown scope {', '.join(unknown)}; scopes are {', '.join(ApiKey.SCOPES)}"
        )
    if not scopes:
        raise ApiKeyInvalid(f"give at least one scope of {', '.join(ApiKey.SCOPES)}")
    return [scope for scope in ApiKey.SCOPES if scope in scopes]


def api_key_create(
    *,
    project: Project,
    scopes: list[str] | tuple[str, ...] | str,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is never stored and cannot be shown again."""
    cleaned = api_key_scopes_clean(scopes)
    name = name.strip()
    if len(name) > ApiKey._meta.get_field("name").max_length:
        raise ApiKeyInvalid("name must be at most 100 characters")
    for _ in range(5):  # a prefix collision is a 1-in-4-billion event; retry rather than fail
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    project=project,
                    name=name,
                    prefix=prefix,
                    key_hash=_hash(plaintext),
                    scopes=cleaned,
                    created_by=created_by,
                )
        except IntegrityError:
            continue
        return key, plaintext
    raise RuntimeError("could not find a free API key prefix")


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoked keys stay listed (who had access, until when) but never authenticate again."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_parse_prefix(plaintext: str) -> str | None:
    """The prefix of a well-formed key, else None (the caller answers 401 without a query)."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = plaintext[len(KEY_PREFIX) :].partition("_")
    if not sep or not secret or len(prefix) != PREFIX_LENGTH or len(plaintext) > 200:
        return None
    if any(char not in "0123456789abcdef" for char in prefix):
        return None
    return prefix


def api_key_authenticate(*, plaintext: str) -> ApiKey | None:
    """The active key this plaintext is, with its project loaded; None for any failure."""
    prefix = api_key_parse_prefix(plaintext)
    if prefix is None:
        return None
    key = ApiKey.objects.select_related("project").filter(prefix=prefix).first()
    # compare_digest even though the hashes are of high-entropy secrets: it costs nothing.
    if key is None or not hmac.compare_digest(key.key_hash, _hash(plaintext)):
        return None
    if key.revoked_at is not None:
        return None
    api_key_touch(key=key)
    return key


def api_key_touch(*, key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION, in one UPDATE that cannot race."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def api_keys_for_project(*, project: Project) -> list[ApiKey]:
    return list(project.api_keys.select_related("created_by").order_by("-created_at", "-id"))
