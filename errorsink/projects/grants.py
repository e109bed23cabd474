"""Who may send events, as the ingest door reads it (docs/architecture.md, "The front door").

The door answers without the database: each web process keeps every active API key (by the
hash of its plaintext), every Sentry key and every project's ingest quota in memory. What makes
that copy safe is a version number in Redis, bumped after every change that commits (a key made
or revoked, a DSN rotated, a quota edited, a project deleted). The door hands its copy's version
to the same Redis call that queues the events; a different version there means the copy is
stale, and the door reloads and decides again. So a revoked key is refused from the first
request after the revocation commits, in every process, with no extra round trip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from errorsink.connections import redis_client
from errorsink.projects.models import ApiKey, Project
from errorsink.projects.quota import quota_effective
from errorsink.sentry.keys import SentryKey

log = logging.getLogger("errorsink.projects")

GRANTS_VERSION_KEY = "errorsink:grants:version"


@dataclass(frozen=True)
class ApiKeyGrant:
    project_id: str
    prefix: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class SentryGrant:
    project_id: str
    public_key: str


@dataclass(frozen=True)
class Grants:
    """A snapshot as of ``version`` (None: no change recorded since Redis started)."""

    version: bytes | None
    api_keys: dict[str, ApiKeyGrant] = field(default_factory=dict)  # by SHA-256 of the key
    sentry_keys: dict[int, SentryGrant] = field(default_factory=dict)  # by DSN id
    quotas: dict[str, int] = field(default_factory=dict)  # events/s by project; 0 = none
    # The same Sentry keys by public key: the OTLP receiver takes one as a bearer token.
    sentry_public_keys: dict[str, SentryGrant] = field(default_factory=dict)

    def quota_of(self, project_id: str) -> int:
        return self.quotas.get(project_id, quota_effective(None))


def grants_load() -> Grants:
    """Every active grant. The version is read first: a change that lands while the rows are
    read leaves the snapshot older than Redis's version, so the next use reloads it."""
    version = redis_client().get(GRANTS_VERSION_KEY)
    api_keys = {
        key_hash: ApiKeyGrant(str(project_id), prefix, frozenset(scopes))
        for key_hash, project_id, prefix, scopes in ApiKey.objects.filter(
            revoked_at__isnull=True
        ).values_list("key_hash", "project_id", "prefix", "scopes")
    }
    sentry_keys = {
        key_id: SentryGrant(str(project_id), public_key)
        for key_id, project_id, public_key in SentryKey.objects.values_list(
            "id", "project_id", "public_key"
        )
    }
    quotas = {
        str(project_id): quota_effective(quota)
        for project_id, quota in Project.objects.values_list("id", "ingest_quota")
    }
    by_public_key = {grant.public_key: grant for grant in sentry_keys.values()}
    return Grants(version, api_keys, sentry_keys, quotas, by_public_key)


def grants_changed(**_signal) -> None:
    """Bump the version once the change commits (a rolled-back change never happened)."""
    transaction.on_commit(_version_bump)


def _version_bump() -> None:
    try:
        redis_client().incr(GRANTS_VERSION_KEY)
    except Exception:  # the door cannot queue without Redis either; it reloads when back
        log.warning("could not bump the ingest grants version", exc_info=True)


def grants_signals_connect() -> None:
    """Every save and delete of a key, a DSN or a project changes what the door allows."""
    from django.db.models.signals import post_delete, post_save

    for model in (ApiKey, SentryKey, Project):
        post_save.connect(grants_changed, sender=model, dispatch_uid=f"grants-{model.__name__}")
        post_delete.connect(grants_changed, sender=model, dispatch_uid=f"grants-{model.__name__}-d")
