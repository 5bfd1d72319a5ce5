"""Shared by the server-layer tests: a registry and a server object of their own, and facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mcp_sse.context import Caller
from mcp_sse.protocol.jsonrpc import Request
from mcp_sse.registry.base import Registry
from mcp_sse.server.eras import RequestFacts
from mcp_sse.server.server import MCPServer


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    """ORM calls from async code run in asgiref's thread: close its connections afterwards."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def server(registry: Registry) -> MCPServer:
    return MCPServer(registry)


def facts(method: str, params: dict[str, Any] | None = None, *, request_id: Any = 1, **extra: Any) -> RequestFacts:
    return RequestFacts(Request(request_id, method, params or {}), extra.pop("caller", Caller()), "test", **extra)


class Outbox:
    """A Port's emit: what the server wrote to the client, with a hook per message."""

    def __init__(self, on_message: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.on_message = on_message

    async def emit(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self.on_message is not None:
            await self.on_message(message)
