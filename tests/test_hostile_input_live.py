"""A lone UTF-16 surrogate in tool arguments, against a real Daphne over real sockets, on the
three transports: Streamable HTTP (stateful 2025-11-25), stateless 2026-07-28, legacy SSE.

Before (d423223): HTTP 500 / -32603 "Internal server error" on Streamable; on legacy the 202
was followed by nothing on the stream; no call log entry. After: a tool result with isError
naming the argument, and a call log row (SQLite file, or PostgreSQL under DATABASE_URL) with
U+FFFD in place of the surrogate.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.live import LiveDatabase, LiveServer, wait_for_call_log
from tests.sse_client import events, next_event

pytestmark = pytest.mark.live

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
V2026 = "2026-07-28"


def call(request_id: int, marker: str, **params: Any) -> bytes:
    """tools/call of echo with "<marker>\\ud800" as a client's JSON encoder writes it (an escape)."""
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": marker + "\ud800"}, **params},
    }
    return json.dumps(message).encode()


def expected_error(marker: str) -> str:
    return (
        "Invalid arguments:\n- text: not valid Unicode text: a lone UTF-16 surrogate (\\ud800) "
        f"at character {len(marker)}"
    )


def initialize(version: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}},
    }


def check(response: dict[str, Any], marker: str) -> None:
    assert response["id"] == 2
    result = response["result"]
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": expected_error(marker)}]


async def test_streamable_stateful(daphne_server: LiveServer, live_db: LiveDatabase) -> None:
    marker = f"live-stateful-{time.time_ns()}"
    async with httpx.AsyncClient(timeout=10) as http:
        init = await http.post(daphne_server.mcp_url, json=initialize("2025-11-25"), headers=ACCEPT)
        session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        response = await http.post(daphne_server.mcp_url, content=call(2, marker), headers=ACCEPT | session)
    assert response.status_code == 200, response.text
    check(response.json(), marker)
    assert await wait_for_call_log(live_db, marker + "\ufffd") == "tool_error"


async def test_stateless_2026(daphne_server: LiveServer, live_db: LiveDatabase) -> None:
    marker = f"live-stateless-{time.time_ns()}"
    meta = {
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = ACCEPT | {"mcp-protocol-version": V2026, "mcp-method": "tools/call", "mcp-name": "echo"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(daphne_server.mcp_url, content=call(2, marker, _meta=meta), headers=headers)
    assert response.status_code == 200, response.text
    check(response.json(), marker)
    assert await wait_for_call_log(live_db, marker + "\ufffd") == "tool_error"


async def test_legacy_sse(daphne_server: LiveServer, live_db: LiveDatabase) -> None:
    marker = f"live-legacy-{time.time_ns()}"
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", f"{daphne_server.url}/mcp/sse", headers={"accept": "text/event-stream"}) as s:
            reader = events(s)
            url = daphne_server.url + (await next_event(reader)).data
            assert (await http.post(url, json=initialize("2024-11-05"))).status_code == 202
            assert (await next_event(reader)).json()["id"] == 1
            posted = await http.post(url, content=call(2, marker), headers={"content-type": "application/json"})
            assert posted.status_code == 202
            check((await next_event(reader)).json(), marker)
    assert await wait_for_call_log(live_db, marker + "\ufffd") == "tool_error"
