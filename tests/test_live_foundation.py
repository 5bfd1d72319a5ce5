"""The first slice end to end: a real Daphne process and the official MCP Python SDK."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client

from tests.live import LiveServer

pytestmark = pytest.mark.live

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def initialize_body(version: str = "2025-06-18") -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }


async def test_sdk_client_initializes_lists_and_calls_echo(daphne_server: LiveServer) -> None:
    async with Client(daphne_server.mcp_url, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None and client.server_info.name == "mcp_sse demo"
        names = [t.name for t in (await client.list_tools()).tools]
        assert "echo" in names and "add" in names
        result = await client.call_tool("echo", {"text": "hello from the SDK"})
        assert not result.is_error
        assert result.content[0].text == "hello from the SDK"  # type: ignore[union-attr]
        total = await client.call_tool("add", {"a": 2, "b": 40})
        assert total.structured_content == {"result": 42.0}


async def test_trailing_slash_is_served_without_redirect(daphne_server: LiveServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(daphne_server.mcp_url + "/", json=initialize_body(), headers=ACCEPT)
    assert response.status_code == 200
    assert response.headers["mcp-session-id"]


class TestBadInput:
    """Each malformed request gets the status and JSON-RPC error the spec names, never a 500."""

    async def post(self, server: LiveServer, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(server.mcp_url, content=content, headers={**ACCEPT, **(headers or {})})

    async def session(self, server: LiveServer) -> str:
        async with httpx.AsyncClient() as http:
            response = await http.post(server.mcp_url, json=initialize_body(), headers=ACCEPT)
        return response.headers["mcp-session-id"]

    async def test_malformed_json_is_400_parse_error(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b'{"jsonrpc": "2.0", "id": 1,')
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32700

    async def test_nan_is_not_json(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b'{"jsonrpc": "2.0", "id": NaN, "method": "ping"}')
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32700

    async def test_non_object_body_is_400_invalid_request(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b'"just a string"')
        assert response.status_code == 400
        assert response.json()["error"]["code"] == -32600

    async def test_wrong_jsonrpc_version_is_invalid_request_with_id(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b'{"jsonrpc": "1.0", "id": 7, "method": "ping"}')
        assert response.status_code == 400
        body = response.json()
        assert body["error"]["code"] == -32600 and body["id"] == 7

    async def test_wrong_content_type_is_415(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b"{}", {"content-type": "text/plain"})
        assert response.status_code == 415

    async def test_missing_accept_types_is_406(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b"{}", {"accept": "application/json"})
        assert response.status_code == 406

    async def test_unknown_method_is_method_not_found(self, daphne_server: LiveServer) -> None:
        session = await self.session(daphne_server)
        response = await self.post(
            daphne_server,
            b'{"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}',
            {"mcp-session-id": session},
        )
        assert response.status_code == 200
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {"code": -32601, "message": "Method not found: no/such/method"},
        }

    async def test_missing_session_is_400_unknown_session_is_404(self, daphne_server: LiveServer) -> None:
        ping = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
        assert (await self.post(daphne_server, ping)).status_code == 400
        assert (await self.post(daphne_server, ping, {"mcp-session-id": "nope"})).status_code == 404

    async def test_oversized_body_is_413(self, daphne_server: LiveServer) -> None:
        response = await self.post(daphne_server, b" " * (4 * 1024 * 1024 + 1))
        assert response.status_code == 413

    async def test_unsupported_protocol_version_header_is_400(self, daphne_server: LiveServer) -> None:
        session = await self.session(daphne_server)
        response = await self.post(
            daphne_server,
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
            {"mcp-session-id": session, "mcp-protocol-version": "1999-01-01"},
        )
        assert response.status_code == 400

    async def test_put_is_405_with_allow(self, daphne_server: LiveServer) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.put(daphne_server.mcp_url, content=b"{}")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST, DELETE"

    async def test_invalid_tool_arguments_are_a_tool_error_naming_the_field(self, daphne_server: LiveServer) -> None:
        async with Client(daphne_server.mcp_url, mode="legacy") as client:
            result = await client.call_tool("echo", {"text": 12})
        assert result.is_error
        assert "text" in result.content[0].text  # type: ignore[union-attr]

    async def test_the_worker_survives_all_of_the_above(self, daphne_server: LiveServer) -> None:
        async with Client(daphne_server.mcp_url, mode="legacy") as client:
            assert (await client.call_tool("echo", {"text": "still here"})).content[0].text == "still here"  # type: ignore[union-attr]
        assert "Traceback" not in daphne_server.log()
