"""One tool, both eras, in-process through the real ASGI stack: a *sync* tool that asks twice and
keeps ``ctx.request_state`` works as server-to-client requests in 2025 and as MRTR rounds in 2026."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mcp_sse import tools
from mcp_sse.registry.base import default_registry
from mcp_sse.testing import MCPTestClient

pytestmark = pytest.mark.django_db(transaction=True)

V = "2026-07-28"


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def survey(ctx: tools.SyncContext, topic: str) -> str:
    """Asks for a rating, then for a reason (sync tool: blocking context calls)."""
    ctx.request_state["runs"] = ctx.request_state.get("runs", 0) + 1
    rating = ctx.elicit(f"Rate {topic}", {"type": "object", "properties": {"stars": {"type": "integer"}}}, key="rating")
    reason = ctx.elicit("Why?", {"type": "object", "properties": {"why": {"type": "string"}}}, key="reason")
    stars = (rating.get("content") or {}).get("stars")
    why = (reason.get("content") or {}).get("why")
    return f"{topic}: {stars} stars because {why} (run {ctx.request_state['runs']})"


@pytest.fixture
def survey_tool() -> Iterator[str]:
    name = "inprocess_survey"
    tools.tool(survey, name=name)
    yield name
    default_registry.remove_tool(name)


async def test_legacy_session_asks_with_server_to_client_requests(survey_tool: str) -> None:
    asked: list[str] = []

    async def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params["message"])
        content = {"stars": 5} if params["message"].startswith("Rate") else {"why": "tabs"}
        return {"action": "accept", "content": content}

    async with MCPTestClient(on_request=answer) as client:
        result = await client.call_tool(survey_tool, {"topic": "vim"})
    assert asked == ["Rate vim", "Why?"]
    assert result["content"][0]["text"] == "vim: 5 stars because tabs (run 1)"


async def test_modern_requests_ask_with_input_required_rounds(survey_tool: str) -> None:
    client = MCPTestClient()
    meta = {
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    headers = {"mcp-protocol-version": V, "mcp-method": "tools/call", "mcp-name": survey_tool}

    async def round_trip(request_id: int, **extra: Any) -> dict[str, Any]:
        params = {"name": survey_tool, "arguments": {"topic": "vim"}, "_meta": meta, **extra}
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()
        status, _, content = await client.http("POST", body, headers)
        assert status == 200, content
        return dict(json.loads(content)["result"])

    first = await round_trip(1)
    assert list(first["inputRequests"]) == ["rating"]
    second = await round_trip(
        2, inputResponses={"rating": {"action": "accept", "content": {"stars": 4}}}, requestState=first["requestState"]
    )
    assert list(second["inputRequests"]) == ["reason"]
    final = await round_trip(
        3,
        inputResponses={"reason": {"action": "accept", "content": {"why": "modes"}}},
        requestState=second["requestState"],
    )
    # The earlier answer travelled in requestState; so did the tool's own counter.
    assert final["content"][0]["text"] == "vim: 4 stars because modes (run 3)"
    assert final["resultType"] == "complete"
