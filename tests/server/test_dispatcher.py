"""mcp_sse.server.dispatcher without a transport: the one place exceptions become JSON-RPC errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcp_sse import tools
from mcp_sse.protocol.errors import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND
from mcp_sse.registry.base import Registry
from mcp_sse.server.server import MCPServer

from .conftest import facts

pytestmark = pytest.mark.django_db(transaction=True)


async def handle(server: MCPServer, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    request_facts = facts(method, params)
    exchange = server.stateful.exchange(request_facts, None)
    return await server.dispatcher.handle(request_facts.request, exchange)


async def test_unknown_method_is_method_not_found(server: MCPServer) -> None:
    response = await handle(server, "tools/nonsense")
    assert response == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": METHOD_NOT_FOUND, "message": "Method not found: tools/nonsense"},
    }


async def test_tool_failures_are_results_with_is_error(server: MCPServer, registry: Registry) -> None:
    def explode() -> str:
        raise RuntimeError("secret detail")

    tools.tool(explode, name="explode", registry=registry)
    response = await handle(server, "tools/call", {"name": "explode", "arguments": {}})
    result = response["result"]
    assert result["isError"] is True
    assert "explode" in result["content"][0]["text"]
    assert "secret detail" not in result["content"][0]["text"]  # DEBUG is off: no detail leaks


async def test_unknown_tool_and_bad_arguments_are_invalid_params(server: MCPServer, registry: Registry) -> None:
    tools.tool(lambda text: text, name="echo_back", registry=registry)
    unknown = await handle(server, "tools/call", {"name": "missing"})
    assert unknown["error"]["code"] == INVALID_PARAMS and "Unknown tool" in unknown["error"]["message"]
    not_an_object = await handle(server, "tools/call", {"name": "echo_back", "arguments": [1]})
    assert not_an_object["error"]["code"] == INVALID_PARAMS


async def test_an_unexpected_exception_in_a_handler_is_a_generic_internal_error(
    server: MCPServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(params: dict[str, Any], exchange: Any) -> dict[str, Any]:
        raise KeyError("internal detail")

    server.dispatcher.handlers["ping"] = broken
    response = await handle(server, "ping")
    assert response["error"] == {"code": INTERNAL_ERROR, "message": "Internal error"}
    assert "internal detail" in caplog.text  # the traceback goes to the log, not to the client


async def test_cancellation_is_not_turned_into_an_error(server: MCPServer) -> None:
    async def cancelled(params: dict[str, Any], exchange: Any) -> dict[str, Any]:
        raise asyncio.CancelledError

    server.dispatcher.handlers["ping"] = cancelled
    with pytest.raises(asyncio.CancelledError):
        await handle(server, "ping")


async def test_pagination_cursors_are_opaque_and_checked(server: MCPServer, registry: Registry) -> None:
    from django.conf import settings
    from django.test import override_settings

    for n in range(5):
        tools.tool(lambda: "x", name=f"t{n}", registry=registry)
    with override_settings(MCP_SSE={**settings.MCP_SSE, "PAGE_SIZE": 2}):
        first = (await handle(server, "tools/list"))["result"]
        assert [t["name"] for t in first["tools"]] == ["t0", "t1"]
        second = (await handle(server, "tools/list", {"cursor": first["nextCursor"]}))["result"]
        assert [t["name"] for t in second["tools"]] == ["t2", "t3"]
        bad = await handle(server, "tools/list", {"cursor": "not-a-cursor"})
        assert bad["error"]["code"] == INVALID_PARAMS


async def test_initialize_makes_a_session_in_the_servers_store(server: MCPServer) -> None:
    request_facts = facts(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {"sampling": {}}, "clientInfo": {"name": "t"}}
    )
    exchange = server.stateful.exchange(request_facts, None)
    response = await server.dispatcher.handle(request_facts.request, exchange)
    assert response["result"]["protocolVersion"] == "2025-06-18"
    assert exchange.new_session is not None
    stored = await server.sessions.get(exchange.new_session.id)
    assert stored is not None and stored.client_capabilities == {"sampling": {}} and stored.client_name == "t"
