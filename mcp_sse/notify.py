"""Server-initiated notifications that reach every connected session on every worker.

from mcp_sse.notify import notify_resource_updated
notify_resource_updated("library://books/42")   # from sync code (a view, a signal handler)
await anotify_resource_updated("library://books/42")   # from async code
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

# Every stream that forwards server-wide notifications (list_changed, resource updates).
BROADCAST_GROUP = "mcp-bcast"
LIST_KINDS = ("tools", "resources", "prompts")
# Broadcast when a token is revoked or deleted: streams opened with it end.
TOKEN_REVOKED = "mcp.token_revoked"
# Broadcast that ends every 2026 ``subscriptions/listen`` stream gracefully (e.g. before a deploy).
LISTEN_END = "mcp.listen.end"


async def broadcast(payload: dict[str, Any]) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(BROADCAST_GROUP, payload)


async def anotify_list_changed(kind: str = "tools") -> None:
    """Tell every connected client that the tool/resource/prompt list changed."""
    if kind not in LIST_KINDS:
        raise ValueError(f"kind must be one of {LIST_KINDS}")
    await broadcast({"type": "mcp.list_changed", "kind": kind})


async def anotify_resource_updated(uri: str) -> None:
    """Tell sessions subscribed to ``uri`` that it changed."""
    await broadcast({"type": "mcp.resource_updated", "uri": uri})


def notify_list_changed(kind: str = "tools") -> None:
    async_to_sync(anotify_list_changed)(kind)


def notify_resource_updated(uri: str) -> None:
    async_to_sync(anotify_resource_updated)(uri)


async def anotify_token_revoked(token_id: int) -> None:
    """End every open stream authenticated with this token, on every worker."""
    await broadcast({"type": TOKEN_REVOKED, "token_id": token_id})


def notify_token_revoked(token_id: int) -> None:
    async_to_sync(anotify_token_revoked)(token_id)


async def anotify_credential_revoked(credential: str) -> None:
    """End every open stream authenticated with an OAuth token (``Caller.extra["credential"]``)."""
    await broadcast({"type": TOKEN_REVOKED, "credential": credential})


def notify_credential_revoked(credential: str) -> None:
    async_to_sync(anotify_credential_revoked)(credential)


def revokes(message: dict[str, Any], caller: Any) -> bool:
    """Whether a channel-layer message says the credential ``caller`` authenticated with was
    revoked: an admin token (by id) or an OAuth token (by its credential key)."""
    if message.get("type") != TOKEN_REVOKED:
        return False
    token_id = caller.token_id
    if token_id is not None and message.get("token_id") == token_id:
        return True
    credential = caller.extra.get("credential")
    return credential is not None and message.get("credential") == credential


async def end_listen_streams() -> None:
    """Ask every worker to close its ``subscriptions/listen`` streams with a final response."""
    await broadcast({"type": LISTEN_END})
