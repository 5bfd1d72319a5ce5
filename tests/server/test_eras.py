"""mcp_sse.server.eras (and .mrtr): the per-request policies, without a transport.

The stateless era admits a request (refusals are JSON-RPC codes, never HTTP statuses), serves
MRTR rounds (``input_required`` then a retry with the answers and the signed state) and finishes
every result with ``resultType``, the server's identity and caching hints."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_sse import tools
from mcp_sse.context import Caller
from mcp_sse.protocol import versions
from mcp_sse.protocol.errors import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_sse.protocol.jsonrpc import Notification, Request
from mcp_sse.registry.base import Registry
from mcp_sse.server.eras import Rejected, is_stateless
from mcp_sse.server.server import MCPServer

from .conftest import facts

pytestmark = pytest.mark.django_db(transaction=True)

V = "2026-07-28"


def modern(method: str, params: dict[str, Any] | None = None, *, caller: Caller | None = None, **headers: str) -> Any:
    body = dict(params or {})
    body["_meta"] = {
        versions.META_PROTOCOL_VERSION: V,
        versions.META_CLIENT_CAPABILITIES: {"elicitation": {}},
        **body.get("_meta", {}),
    }
    sent = {"mcp-protocol-version": V, "mcp-method": method}
    if "name" in body:
        sent["mcp-name"] = body["name"]
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return facts(method, body, caller=caller or Caller(), headers=tuple(sent.items()))


def rejection(server: MCPServer, request_facts: Any) -> int:
    with pytest.raises(Rejected) as caught:
        server.stateless.admit(request_facts)
    return caught.value.code


def test_the_era_is_chosen_per_request(server: MCPServer) -> None:
    modern_request = Request(1, "tools/list", {"_meta": {versions.META_PROTOCOL_VERSION: V}})
    plain = Request(1, "tools/list", {})
    kwargs: dict[str, Any] = {"batch": False, "session_header": "", "version_header": ""}
    assert server.era_for(modern_request, **kwargs) is server.stateless
    assert server.era_for(plain, **kwargs) is server.stateful
    assert server.era_for(modern_request, **{**kwargs, "batch": True}) is server.stateful
    # No _meta but a modern version header outside a session: modern (it then fails admission).
    assert is_stateless(plain, batch=False, session_header="", version_header=V)
    assert not is_stateless(plain, batch=False, session_header="abc", version_header=V)
    assert not is_stateless(Request(1, "initialize", {}), batch=False, session_header="", version_header=V)
    assert is_stateless(Notification("notifications/x", {}), batch=False, session_header="", version_header=V)


def test_admission_refuses_in_the_specs_order(server: MCPServer) -> None:
    no_meta = facts("tools/list", {}, headers=(("mcp-protocol-version", V), ("mcp-method", "tools/list")))
    assert rejection(server, no_meta) == INVALID_PARAMS
    assert rejection(server, modern("tools/list", mcp_protocol_version="2025-11-25")) == HEADER_MISMATCH
    old = modern("tools/list")
    old_meta = {**old.request.params["_meta"], versions.META_PROTOCOL_VERSION: "2099-01-01"}
    old = facts(
        "tools/list",
        {"_meta": old_meta},
        headers=(("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")),
    )
    assert rejection(server, old) == UNSUPPORTED_PROTOCOL_VERSION
    assert rejection(server, modern("tools/list", mcp_method="tools/call")) == HEADER_MISMATCH
    assert rejection(server, modern("ping")) == METHOD_NOT_FOUND
    assert rejection(server, modern("initialize")) == METHOD_NOT_FOUND
    meta = server.stateless.admit(modern("tools/list"))
    assert meta.protocol_version == V and meta.client_capabilities == {"elicitation": {}}


async def serve(server: MCPServer, request_facts: Any) -> dict[str, Any]:
    era = server.stateless
    exchange = era.exchange(request_facts, era.admit(request_facts))
    response = await server.requests.serve(era, request_facts.request, exchange)
    assert response is not None
    return response


async def test_results_are_finished_with_result_type_identity_and_cache_hints(server: MCPServer) -> None:
    response = await serve(server, modern("tools/list"))
    result = response["result"]
    assert result["resultType"] == "complete"
    assert result["_meta"][versions.META_SERVER_INFO]["name"]
    assert "ttlMs" in result and result["cacheScope"] in ("public", "private")
    discovered = (await serve(server, modern("server/discover")))["result"]
    assert V in discovered["supportedVersions"] and discovered["resultType"] == "complete"


async def test_an_mrtr_round_asks_then_the_retry_completes(server: MCPServer, registry: Registry) -> None:
    async def rename(ctx: tools.Context, old: str) -> str:
        ctx.request_state["asked"] = ctx.request_state.get("asked", 0) + 1
        answer = await ctx.elicit(f"New name for {old}?", {"type": "object"}, key="name")
        return f"{old} -> {answer['content']['name']} (round {ctx.request_state['asked']})"

    tools.tool(rename, name="rename", registry=registry)
    first = (await serve(server, modern("tools/call", {"name": "rename", "arguments": {"old": "a"}})))["result"]
    assert first["resultType"] == "input_required"
    assert first["inputRequests"]["name"]["method"] == "elicitation/create"
    retry = {
        "name": "rename",
        "arguments": {"old": "a"},
        "inputResponses": {"name": {"action": "accept", "content": {"name": "b"}}},
        "requestState": first["requestState"],
    }
    done = (await serve(server, modern("tools/call", retry)))["result"]
    assert done["resultType"] == "complete"
    assert done["content"][0]["text"] == "a -> b (round 2)"


async def test_request_state_is_bound_to_the_caller_and_the_request(server: MCPServer, registry: Registry) -> None:
    async def ask(ctx: tools.Context, x: str) -> str:
        await ctx.elicit("?", {"type": "object"}, key="k")
        return "ok"

    tools.tool(ask, name="ask", registry=registry)
    first = (await serve(server, modern("tools/call", {"name": "ask", "arguments": {"x": "1"}})))["result"]
    state = first["requestState"]
    other_caller = Caller(token_id=99)
    stolen = modern("tools/call", {"name": "ask", "arguments": {"x": "1"}, "requestState": state}, caller=other_caller)
    assert (await serve(server, stolen))["error"]["code"] == INVALID_PARAMS
    other_args = modern("tools/call", {"name": "ask", "arguments": {"x": "2"}, "requestState": state})
    assert (await serve(server, other_args))["error"]["code"] == INVALID_PARAMS
    tampered = modern("tools/call", {"name": "ask", "arguments": {"x": "1"}, "requestState": state[:-2] + "xx"})
    assert (await serve(server, tampered))["error"]["code"] == INVALID_PARAMS


async def test_asking_without_the_clients_capability_is_an_error(server: MCPServer, registry: Registry) -> None:
    async def sample(ctx: tools.Context) -> str:
        await ctx.sample("hi")
        return "never"

    tools.tool(sample, name="sample", registry=registry)
    response = await serve(server, modern("tools/call", {"name": "sample", "arguments": {}}))
    assert response["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY
    assert response["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}
