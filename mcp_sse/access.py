"""Who may see and use what.

The visible set for a caller = registered in code ∩ enabled in the admin ∩ allowed for the
token ∩ permitted for the user's groups. ``tools/list`` and ``tools/call`` (and the resource and
prompt equivalents) all go through :func:`is_visible`, so a tool that is not listed can never be
called.
"""

from __future__ import annotations

import math
import time
from typing import Any

from channels.db import database_sync_to_async

from .auth.oauth import scope_allows_tool
from .conf import mcp_settings
from .context import Caller
from .store import read_through, shared_cache

# The visibility cache is invalidated by mcp_sse.sync when Tool rows change (sync imports
# nothing from here: no cycle).
from .sync import VISIBILITY_KEY, ensure_synced
from .sync import invalidate_visibility as invalidate_visibility


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded, retry after {retry_after}s")
        self.retry_after = retry_after


def _load_visibility() -> dict[str, Any]:
    from .models import Tool

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
    """The admin's visibility rules, from the shared cache (filled from the DB on a miss; read
    from the DB while the shared cache is out)."""

    async def load() -> dict[str, Any]:
        rules = await database_sync_to_async(_load_visibility)()
        rules["hidden_set"] = {f"{k}:{n}" for k, n in rules["hidden"]}
        return rules

    expiry = mcp_settings.VISIBILITY_CACHE_SECONDS
    rules: dict[str, Any] = await read_through(shared_cache(), VISIBILITY_KEY, load, expiry)
    return rules


def is_visible(rules: dict[str, Any], caller: Caller, kind: str, name: str, *, permission: str | None = None) -> bool:
    """Whether ``caller`` may see (and so use) an entry. ``permission`` is the Django permission
    a model-backed tool needs: a tool the user could never run is not listed either."""
    if permission is not None and not caller.has_perm(permission):
        return False
    key = f"{kind}:{name}"
    if key in rules["hidden_set"]:
        return False
    if kind in ("function", "model") and caller.allowed_tools is not None and name not in caller.allowed_tools:
        return False
    if kind in ("function", "model") and not scope_allows_tool(caller.scopes, name):
        return False
    allowed_groups = rules["groups"].get(key)
    if allowed_groups and not caller.is_superuser:
        member_of = caller.extra.get("groups") or []
        if not set(allowed_groups) & set(member_of):
            return False
    return True


RATE_WINDOW = 60  # seconds: limits are calls per minute


async def _count_call(cache: Any, key: str) -> int:
    if await cache.add(key, 1, RATE_WINDOW * 2 + 5):
        return 1
    try:
        return int(await cache.incr(key))
    except ValueError:  # expired between add and incr
        await cache.set(key, 1, RATE_WINDOW * 2 + 5)
        return 1


def _seconds_until_allowed(limit: int, previous: int, current: int, into_window: float) -> int:
    """When one more call fits, given this window's and the last window's counts."""
    if current + 1 <= limit:
        # The last window's weight shrinks linearly: wait until previous * (1 - f) <= room.
        room = limit - current - 1
        needed = 1 - room / previous if previous else 0
        wait = needed * RATE_WINDOW - into_window
    else:
        # This window is full: in the next one, it weighs as "previous" until enough has passed.
        needed = 1 - (limit - 1) / current if current else 0
        wait = (RATE_WINDOW - into_window) + max(0.0, needed) * RATE_WINDOW
    return max(1, math.ceil(wait))


async def check_rate_limit(caller: Caller) -> None:
    """A sliding one-minute window per token, counted in the shared cache (all workers).

    The count is this minute's calls plus last minute's, weighted by how much of last minute
    still lies within the past 60 seconds: no burst of twice the limit around a minute's edge.
    A refused call is not counted, so a client that honours ``Retry-After`` gets through.
    """
    limit = caller.rate_limit
    if not limit or caller.token_id is None:
        return
    cache = shared_cache()
    now = time.time()
    window = int(now // RATE_WINDOW)
    into_window = now - window * RATE_WINDOW
    key = f"mcp_sse:rate:{caller.token_id}:{window}"
    current = await _count_call(cache, key)
    previous = int(await cache.get(f"mcp_sse:rate:{caller.token_id}:{window - 1}") or 0)
    if previous * (1 - into_window / RATE_WINDOW) + current <= limit:
        return
    try:
        await cache.incr(key, -1)
    except ValueError:
        pass
    raise RateLimited(retry_after=_seconds_until_allowed(limit, previous, current - 1, into_window))
