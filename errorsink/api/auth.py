"""Bearer API keys: who is calling, within their rate limit, on their own project, in scope.

Everything is checked here, before ninja validates the body, so the status a caller sees follows
the catalog's order: 401, 429, 404 (never 403 for another project: existence is not revealed),
403, and only then 422.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja.security import HttpBearer

from errorsink.api.errors import ApiError
from errorsink.api.ratelimit import ratelimit_hit
from errorsink.projects.api_keys import api_key_authenticate
from errorsink.projects.models import ApiKey


class KeyAuth(HttpBearer):
    """`KeyAuth("errors:read")` on a route; `KeyAuth()` accepts any valid key."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        assert scope is None or scope in ApiKey.SCOPES, scope
        self.scope = scope

    def __call__(self, request: HttpRequest) -> ApiKey:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Missing API key: send the header Authorization: Bearer <key>")
        key = self.authenticate(request, token)
        if key is None:
            raise ApiError(401, "Invalid or revoked API key")
        request.api_key_prefix = key.prefix
        retry_after = ratelimit_hit(bucket=key.prefix)
        if retry_after is not None:
            raise ApiError(
                429,
                f"Rate limit exceeded for key es_{key.prefix}; retry in {retry_after}s",
                headers={"Retry-After": str(retry_after)},
            )
        project_id = (request.resolver_match.kwargs if request.resolver_match else {}).get(
            "project_id"
        )
        if project_id is not None and not _is_project_of(key, project_id):
            raise ApiError(404, "No such project")
        if self.scope is not None and self.scope not in key.scopes:
            raise ApiError(403, f"This API key lacks the scope {self.scope}")
        return key

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(plaintext=token)


def _is_project_of(key: ApiKey, project_id: object) -> bool:
    try:
        return uuid.UUID(str(project_id)) == key.project_id
    except ValueError:
        return False
