"""The stateless 2026-07-28 wire across Daphne processes sharing Redis (channel layer + cache)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.live import LiveDatabase, LiveServer
from tests.sse_client import Event, events, next_event

pytestmark = [pytest.mark.live, pytest.mark.redis]

V = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": V,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "multiworker-2026", "version": "1"},
}
SUB = "io.modelcontextprotocol/subscriptionId"


def headers(method: str, name: str | None = None) -> dict[str, str]:
    out = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": V,
        "mcp-method": method,
    }
    if name is not None:
        out["mcp-name"] = name
    return out


async def call(server: LiveServer, tool: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": uuid.uuid4().hex,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": META, **params},
    }
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(server.mcp_url, json=body, headers=headers("tools/call", tool))
    assert response.status_code == 200, response.text
    return dict(response.json())


@asynccontextmanager
async def listening(server: LiveServer, request_id: str, **notifications: Any) -> AsyncIterator[AsyncIterator[Event]]:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "subscriptions/listen",
        "params": {"notifications": notifications, "_meta": META},
    }
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(20, read=60)) as http,
        http.stream("POST", server.mcp_url, json=body, headers=headers("subscriptions/listen")) as response,
    ):
        assert response.status_code == 200
        stream = events(response)
        ack = (await next_event(stream)).json()
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        yield stream


async def test_listen_on_a_hears_a_tool_change_made_through_b(conformance_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = conformance_pair
    async with listening(a, "listen-a", toolsListChanged=True) as stream:
        reply = await call(b, "test_trigger_tool_change", {})
        assert reply["result"]["content"][0]["text"].startswith("test_dynamic_tool ")
        changed = (await next_event(stream)).json()
    assert changed["method"] == "notifications/tools/list_changed"
    assert changed["params"]["_meta"][SUB] == "listen-a"


async def test_input_required_round_on_a_completes_on_b(conformance_pair: tuple[LiveServer, LiveServer]) -> None:
    """No server-side state: the signed requestState minted by A is accepted by B."""
    a, b = conformance_pair
    first = (await call(a, "test_input_required_result_multi_round", {}))["result"]
    second = (
        await call(
            b,
            "test_input_required_result_multi_round",
            {},
            inputResponses={"step1": {"action": "accept", "content": {"name": "Ada"}}},
            requestState=first["requestState"],
        )
    )["result"]
    assert list(second["inputRequests"]) == ["step2"]
    final = await call(
        a,
        "test_input_required_result_multi_round",
        {},
        inputResponses={"step2": {"action": "accept", "content": {"color": "teal"}}},
        requestState=second["requestState"],
    )
    assert final["result"]["content"][0]["text"] == "Ada likes teal"


@pytest.fixture
def named_pair(
    redis_url: str, server_factory: Callable[..., LiveServer]
) -> tuple[LiveServer, LiveServer, dict[str, str]]:
    """Two workers over Redis, plus the environment another process needs to reach them."""
    prefix = uuid.uuid4().hex[:8]
    a = server_factory(redis_url=redis_url, redis_prefix=prefix)
    b = server_factory(redis_url=redis_url, redis_prefix=prefix)
    env = {"REDIS_URL": redis_url, "MCP_LAYER_PREFIX": f"asgi-{prefix}", "MCP_CACHE_PREFIX": f"mcp-{prefix}"}
    return a, b, env


async def test_admin_visibility_change_reaches_listen_streams(
    named_pair: tuple[LiveServer, LiveServer, dict[str, str]], live_db: LiveDatabase
) -> None:
    """A Tool row saved in another process (as the admin does) notifies listeners on every worker."""
    a, b, env = named_pair
    name = f"mw-probe-{uuid.uuid4().hex[:6]}"
    save = f"from mcp_sse.models import Tool\nTool.objects.create(kind='function', name={name!r}, enabled=False)\n"
    async with listening(a, "on-a", toolsListChanged=True) as on_a, listening(b, "on-b", toolsListChanged=True) as on_b:
        try:
            await asyncio.to_thread(live_db.manage, "shell", "-c", save, extra_env=env)
            for stream, tag in ((on_a, "on-a"), (on_b, "on-b")):
                changed = (await next_event(stream)).json()
                assert changed["method"] == "notifications/tools/list_changed"
                assert changed["params"]["_meta"][SUB] == tag
        finally:
            delete = f"from mcp_sse.models import Tool\nTool.objects.filter(name={name!r}).delete()\n"
            await asyncio.to_thread(live_db.manage, "shell", "-c", delete, extra_env=env)


async def test_end_listen_streams_closes_every_worker_gracefully(
    named_pair: tuple[LiveServer, LiveServer, dict[str, str]], live_db: LiveDatabase
) -> None:
    a, b, env = named_pair
    end = "import asyncio\nfrom mcp_sse.notify import end_listen_streams\nasyncio.run(end_listen_streams())\n"
    async with listening(a, "end-a", promptsListChanged=True) as on_a, listening(b, "end-b") as on_b:
        await asyncio.to_thread(live_db.manage, "shell", "-c", end, extra_env=env)
        for stream, tag in ((on_a, "end-a"), (on_b, "end-b")):
            final = (await next_event(stream)).json()
            assert final["id"] == tag
            assert final["result"]["resultType"] == "complete"
            assert final["result"]["_meta"][SUB] == tag
            with pytest.raises(StopAsyncIteration):
                await next_event(stream)
