"""Access tokens from ``Authorization: Bearer`` or the configured custom header."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import caches
from django.utils import timezone

from ..conf import mcp_settings
from ..context import Caller
from ..models import AccessToken, hash_token
from ..store import is_outage, read_through, shared_cache
from .base import UNKNOWN_TOKEN, AuthenticationFailed, BaseAuthentication

_INVALID = "invalid"
# Write last_used at most this often per token (no write per request).
LAST_USED_INTERVAL = 300


def _cache_key(digest: str) -> str:
    return f"mcp_sse:token:{digest}"


def extract_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    custom = mcp_settings.TOKEN_HEADER
    if custom:
        value = headers.get(custom.lower(), "").strip()
        if value:
            return value
    return None


def forget_token(digest: str) -> None:
    """Drop a token from the cache so that a revocation takes effect now."""
    caches[mcp_settings.CACHE_ALIAS].delete(_cache_key(digest))


def _load(digest: str) -> dict[str, Any] | str:
    token = (
        AccessToken.objects.select_related("user")
        .filter(digest=digest)
        .only(
            "id",
            "name",
            "expires",
            "revoked",
            "rate_limit",
            "user__id",
            "user__username",
            "user__is_active",
            "user__is_superuser",
        )
        .first()
    )
    if token is None or not token.user.is_active:
        return _INVALID
    if token.revoked is not None:
        return {"revoked": True}
    allowed = list(token.allowed_tools.values_list("name", flat=True))
    groups = list(token.user.groups.values_list("id", flat=True))
    # Resolved once per token cache period: tools/list hides model tools the user cannot run.
    perms = sorted(token.user.get_all_permissions())
    return {
        "token_id": token.id,
        "token_name": token.name,
        "user_id": token.user.id,
        "username": token.user.get_username(),
        "is_superuser": token.user.is_superuser,
        "expires": token.expires.timestamp() if token.expires else None,
        "rate_limit": token.rate_limit,
        "allowed_tools": allowed or None,
        "groups": groups,
        "perms": perms,
    }


def _touch(token_id: int) -> None:
    AccessToken.objects.filter(pk=token_id).update(last_used=timezone.now())


class TokenAuthentication(BaseAuthentication):
    async def authenticate(self, headers: Mapping[str, str]) -> Caller | None:
        plaintext = extract_token(headers)
        if plaintext is None:
            return None
        digest = hash_token(plaintext)
        cache = shared_cache()

        async def load() -> dict[str, Any] | str:
            return await database_sync_to_async(_load)(digest)

        # While the shared cache is out, tokens are read from the database (2026-07-28 calls need
        # nothing else shared).
        record = await read_through(cache, _cache_key(digest), load, mcp_settings.TOKEN_CACHE_SECONDS)
        if record == _INVALID:
            raise AuthenticationFailed(UNKNOWN_TOKEN)
        assert isinstance(record, dict)
        if record.get("revoked"):
            raise AuthenticationFailed("The access token has been revoked.")
        if record["expires"] is not None and record["expires"] <= time.time():
            raise AuthenticationFailed("The access token has expired.")
        try:
            first_use = await cache.add(f"mcp_sse:token-used:{record['token_id']}", 1, LAST_USED_INTERVAL)
        except Exception as exc:
            if not is_outage(exc):
                raise
            first_use = False  # last_used waits for the cache (no write per request meanwhile)
        if first_use:
            await database_sync_to_async(_touch)(record["token_id"])
        return Caller(
            user_id=record["user_id"],
            username=record["username"],
            token_id=record["token_id"],
            token_name=record["token_name"],
            is_superuser=record["is_superuser"],
            allowed_tools=frozenset(record["allowed_tools"]) if record["allowed_tools"] else None,
            rate_limit=record["rate_limit"],
            extra={"groups": record["groups"], "perms": frozenset(record.get("perms") or ())},
        )
