"""Who may see and use what.

The visible set for a caller = registered in code ∩ enabled in the admin ∩ allowed for the
token ∩ permitted for the user's groups. ``tools/list`` and ``tools/call`` (and the resource and
prompt equivalents) all go through :func:`is_visible`, so a tool that is not listed can never be
called.
"""

from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import caches

from .conf import mcp_settings
from .context import Caller

VISIBILITY_KEY = "mcp_sse:visibility"


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded, retry after {retry_after}s")
        self.retry_after = retry_after


def _load_visibility() -> dict[str, Any]:
    from .models import Tool
    from .sync import ensure_synced

    ensure_synced()

    hidden: list[tuple[str, str]] = []
    groups: dict[str, list[int]] = {}
    for row in Tool.objects.prefetch_related("allowed_groups").only("kind", "name", "enabled"):
        if not row.enabled:
            hidden.append((row.kind, row.name))
        group_ids = [g.id for g in row.allowed_groups.all()]
        if group_ids:
            groups[f"{row.kind}:{row.name}"] = group_ids
    return {"hidden": hidden, "groups": groups}


async def visibility() -> dict[str, Any]:
    """The admin's visibility rules, from the shared cache (filled from the DB on a miss)."""
    cache = caches[mcp_settings.CACHE_ALIAS]
    rules = await cache.aget(VISIBILITY_KEY)
    if rules is None:
        rules = await database_sync_to_async(_load_visibility)()
        rules["hidden_set"] = {f"{k}:{n}" for k, n in rules["hidden"]}
        await cache.aset(VISIBILITY_KEY, rules, None)
    return rules


def invalidate_visibility() -> None:
    caches[mcp_settings.CACHE_ALIAS].delete(VISIBILITY_KEY)


def is_visible(rules: dict[str, Any], caller: Caller, kind: str, name: str) -> bool:
    key = f"{kind}:{name}"
    if key in rules["hidden_set"]:
        return False
    if kind in ("function", "model") and caller.allowed_tools is not None and name not in caller.allowed_tools:
        return False
    allowed_groups = rules["groups"].get(key)
    if allowed_groups and not caller.is_superuser:
        member_of = caller.extra.get("groups") or []
        if not set(allowed_groups) & set(member_of):
            return False
    return True


async def check_rate_limit(caller: Caller) -> None:
    """A fixed one-minute window per token, counted in the shared cache (all workers)."""
    limit = caller.rate_limit
    if not limit or caller.token_id is None:
        return
    cache = caches[mcp_settings.CACHE_ALIAS]
    window = int(time.time() // 60)
    key = f"mcp_sse:rate:{caller.token_id}:{window}"
    if await cache.aadd(key, 1, 120):
        count = 1
    else:
        try:
            count = await cache.aincr(key)
        except ValueError:  # expired between add and incr
            await cache.aset(key, 1, 120)
            count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, 60 - int(time.time()) % 60))
