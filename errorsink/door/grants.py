"""This process's copy of the ingest grants (errorsink/projects/grants.py), reloaded when
Redis says it is stale. Loads run one at a time; requests that find the copy stale meanwhile
wait for that one load instead of starting their own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from errorsink.door.queueing import door_redis
from errorsink.projects.api_keys import api_key_parse_prefix
from errorsink.projects.grants import (
    GRANTS_VERSION_KEY,
    ApiKeyGrant,
    Grants,
    SentryGrant,
    grants_load,
)


class GrantCache:
    def __init__(self) -> None:
        self._grants: Grants | None = None
        self._loading: asyncio.Future | None = None

    def forget(self) -> None:
        """Drop the copy: the next request loads a new one (tests start each with this)."""
        self._grants, self._loading = None, None

    async def current(self) -> Grants:
        return self._grants if self._grants is not None else await self.reload()

    async def reload(self) -> Grants:
        if self._loading is not None and not self._loading.done():
            return await asyncio.shield(self._loading)
        loop = asyncio.get_running_loop()
        self._loading = loop.create_future()
        try:
            # Off the event loop in Django's own thread for database work: rare (a change
            # was made), and there it sees what the rest of the process sees.
            grants = await sync_to_async(_load)()
        except BaseException as exc:
            self._loading.set_exception(exc)
            self._loading.exception()  # retrieved: waiters re-raise it, nobody logs it twice
            self._loading = None
            raise
        self._grants = grants
        self._loading.set_result(grants)
        return grants

    async def api_key(self, plaintext: str) -> tuple[Grants, ApiKeyGrant | None]:
        """The grant of a key, with the snapshot that holds it; a key the copy lacks is looked
        for again once if Redis's version says the copy is behind (a key made a moment ago)."""
        if api_key_parse_prefix(plaintext) is None:
            return await self.current(), None
        key_hash = hashlib.sha256(plaintext.encode("utf-8")).hexdigest()
        grants = await self.current()
        if key_hash not in grants.api_keys and await self._behind(grants):
            grants = await self.reload()
        return grants, grants.api_keys.get(key_hash)

    async def sentry_key(self, key_id: int, public_key: str) -> tuple[Grants, SentryGrant | None]:
        grants = await self.current()
        if not _sentry_matches(grants, key_id, public_key) and await self._behind(grants):
            grants = await self.reload()
        found = grants.sentry_keys.get(key_id)
        return grants, found if _sentry_matches(grants, key_id, public_key) else None

    async def sentry_public_key(self, public_key: str) -> tuple[Grants, SentryGrant | None]:
        """The grant of a DSN's public key given alone (the OTLP receiver's bearer token)."""
        grants = await self.current()
        if public_key not in grants.sentry_public_keys and await self._behind(grants):
            grants = await self.reload()
        return grants, grants.sentry_public_keys.get(public_key)

    async def _behind(self, grants: Grants) -> bool:
        client, _ = door_redis()
        return await client.get(GRANTS_VERSION_KEY) != grants.version


def _load() -> Grants:
    try:
        return grants_load()
    finally:
        # As Django does after a request: a connection past CONN_MAX_AGE or broken is closed
        # (never one inside a transaction: a test's, in process).
        if not connection.in_atomic_block:
            close_old_connections()


def _sentry_matches(grants: Grants, key_id: int, public_key: str) -> bool:
    found = grants.sentry_keys.get(key_id)
    return found is not None and hmac.compare_digest(found.public_key, public_key)


grant_cache = GrantCache()
