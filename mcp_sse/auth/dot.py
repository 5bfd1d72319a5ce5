"""django-oauth-toolkit access tokens from this site's database (``DOTAuthentication``).

The token must be bound (RFC 8707 ``resource``) to this server: the toolkit reads an empty
resource list as "valid anywhere", which would let a token issued for any API of the site
reach the MCP endpoint, so an unbound token is refused. The validation is cached in the
Django cache by the token's digest; deleting the token (DOT's revoke, a revoked refresh token,
the admin) clears it at once and ends the streams opened with it (see :mod:`mcp_sse.sync`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import caches

from ..conf import mcp_settings
from ..context import Caller
from ..store import read_through, shared_cache
from .base import UNKNOWN_TOKEN, AuthenticationFailed, BaseAuthentication
from .oauth import audience_matches, oauth_settings
from .tokens import extract_token

_UNKNOWN = "unknown"


def dot_cache_key(checksum: str) -> str:
    return f"mcp_sse:dot:{checksum}"


def dot_credential(token_pk: int) -> str:
    """The key streams opened with a DOT token are ended by (see :func:`mcp_sse.notify.revokes`)."""
    return f"dot:{token_pk}"


def forget_dot_token(checksum: str) -> None:
    caches[mcp_settings.CACHE_ALIAS].delete(dot_cache_key(checksum))


def user_record(user: Any) -> dict[str, Any]:
    """What a Caller needs of a Django user, resolved once per cache period (no query per call)."""
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "is_superuser": user.is_superuser,
        "groups": list(user.groups.values_list("id", flat=True)),
        "perms": sorted(user.get_all_permissions()),
    }


def _load(checksum: str) -> dict[str, Any] | str:
    from oauth2_provider.models import get_access_token_model

    token = (
        get_access_token_model().objects.select_related("user", "application").filter(token_checksum=checksum).first()
    )
    if token is None:
        return _UNKNOWN
    if token.user is None or not token.user.is_active:
        # Client-credentials tokens act for no user: nothing to map permissions from.
        return {"refused": "The access token does not act for an active user."}
    application = token.application
    return {
        **user_record(token.user),
        "credential": dot_credential(token.pk),
        "expires": token.expires.timestamp() if token.expires else 0.0,
        "scopes": token.scope.split(),
        "resource": list(token.resource or []),
        "client": (application.client_id if application else "")[:200],
        "client_name": (application.name if application else "")[:200],
    }


def caller_from_record(record: Mapping[str, Any], resource: str) -> Caller:
    """Apply the request-time checks (audience, expiry) to a cached token record."""
    if not record["resource"]:
        raise AuthenticationFailed(
            "The access token is not bound to a resource (RFC 8707): request one for this server."
        )
    if not audience_matches(record["resource"], resource):
        raise AuthenticationFailed("The access token was issued for another resource.")
    if record["expires"] <= time.time():
        raise AuthenticationFailed("The access token has expired.")
    return Caller(
        user_id=record["user_id"],
        username=record["username"],
        is_superuser=record["is_superuser"],
        scopes=frozenset(record["scopes"]),
        oauth_client=record["client"],
        extra={
            "groups": record["groups"],
            "perms": frozenset(record["perms"]),
            "credential": record["credential"],
            "oauth_client_name": record.get("client_name", ""),
        },
    )


class DOTAuthentication(BaseAuthentication):
    """Access tokens issued by django-oauth-toolkit on this site (``pip install mcp-sse[oauth]``)."""

    async def authenticate(self, headers: Mapping[str, str]) -> Caller | None:
        return await self.authenticate_for(headers, "")

    async def authenticate_for(self, headers: Mapping[str, str], resource: str) -> Caller | None:
        plaintext = extract_token(headers)
        if plaintext is None:
            return None
        checksum = hashlib.sha256(plaintext.encode("utf-8")).hexdigest()

        async def load() -> dict[str, Any] | str:
            return await database_sync_to_async(_load)(checksum)

        # Cached for CACHE_SECONDS whatever the token's expiry (checked on every request below);
        # while the shared cache is out, every request reads the database.
        record = await read_through(shared_cache(), dot_cache_key(checksum), load, oauth_settings()["CACHE_SECONDS"])
        if record == _UNKNOWN:
            raise AuthenticationFailed(UNKNOWN_TOKEN)
        assert isinstance(record, dict)
        if "refused" in record:
            raise AuthenticationFailed(record["refused"])
        return caller_from_record(record, resource)
