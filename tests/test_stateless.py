"""The stateless 2026-07-28 wire on a live Daphne server: the official SDK client in modern
mode, then raw HTTP for every rejection the spec pins down (each test names its case).

The server is the conformance site (``conformance.settings``: the demo plus the conformance
suite's ``test_*`` fixtures, which several cases call)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import mcp.types as types
import pytest
from django.test import override_settings
from mcp import Client
from mcp.client.subscriptions import ToolsListChanged

from mcp_sse.protocol.errors import MCPError
from mcp_sse.server import mrtr
from tests.live import LiveDatabase, LiveServer, wait_for_call_log
from tests.sse_client import Event, events, next_event

pytestmark = pytest.mark.live

V = "2026-07-28"
PV = "io.modelcontextprotocol/protocolVersion"
CAPS = "io.modelcontextprotocol/clientCapabilities"
INFO = "io.modelcontextprotocol/clientInfo"
LOG = "io.modelcontextprotocol/logLevel"
SUB = "io.modelcontextprotocol/subscriptionId"
ALL_CAPS = {"sampling": {}, "elicitation": {}, "roots": {}}


def meta(caps: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {PV: V, CAPS: ALL_CAPS if caps is None else caps, INFO: {"name": "raw-test", "version": "1"}, **extra}


def rpc(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def mirrored(body: dict[str, Any], **overrides: str | None) -> dict[str, str]:
    """The headers a conforming client sends for ``body``; ``None`` in overrides drops one."""
    params = body.get("params") or {}
    out = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": V,
        "mcp-method": body["method"],
    }
    name = params.get("uri") if body["method"] == "resources/read" else params.get("name")
    if body["method"] in ("tools/call", "prompts/get", "resources/read") and isinstance(name, str):
        out["mcp-name"] = name
    for key, value in overrides.items():
        header = key.replace("_", "-")
        if value is None:
            out.pop(header, None)
        else:
            out[header] = value
    return out


async def post(server: LiveServer, body: dict[str, Any], **overrides: str | None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as http:
        return await http.post(server.mcp_url, json=body, headers=mirrored(body, **overrides))


async def call(server: LiveServer, tool: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    body = rpc("tools/call", {"name": tool, "arguments": arguments, "_meta": meta(), **params})
    response = await post(server, body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_error(response: httpx.Response, status: int, code: int, request_id: Any = 1) -> dict[str, Any]:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["id"] == request_id
    assert payload["error"]["code"] == code, payload
    return dict(payload["error"])


# -- the official SDK in modern mode -------------------------------------------------------------
async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled<{prompt}>"), model="test-model"
    )


async def elicitation(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"count": 4})


def sdk(server: LiveServer, mode: str = V, **kwargs: Any) -> Client:
    return Client(server.mcp_url, mode=mode, sampling_callback=sampling, elicitation_callback=elicitation, **kwargs)


async def test_sdk_auto_mode_discovers_the_modern_revision(conformance_server: LiveServer) -> None:
    async with sdk(conformance_server, mode="auto") as client:
        assert client.protocol_version == V
        assert client.server_info is not None and client.server_info.name == "mcp_sse demo"
        capabilities = client.server_capabilities
        assert capabilities.tools is not None and capabilities.tools.list_changed
        assert capabilities.prompts is not None and capabilities.resources is not None


async def test_sdk_lists_in_a_stable_order_and_calls(conformance_server: LiveServer) -> None:
    async with sdk(conformance_server, cache=None) as client:
        first = [t.name for t in (await client.list_tools()).tools]
        second = [t.name for t in (await client.list_tools()).tools]
        assert first == second
        assert {"echo", "slow_echo", "test_x_mcp_header"} <= set(first)
        result = await client.call_tool("echo", {"text": "hello 2026"})
        assert result.content[0].text == "hello 2026"  # type: ignore[union-attr]
        # The SDK mirrors x-mcp-header arguments (Base64 for non-ASCII); the server checks them.
        region = await client.call_tool("test_x_mcp_header", {"region": "Zürich"})
        assert region.content[0].text == "region=Zürich"  # type: ignore[union-attr]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        assert "test_simple_prompt" in prompts
        contents = (await client.read_resource("test://static-text")).contents
        assert contents[0].text == "This is the content of the static text resource."  # type: ignore[union-attr]


async def test_sdk_progress_arrives_before_the_result(conformance_server: LiveServer) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(time.monotonic())

    async with sdk(conformance_server) as client:
        result = await client.call_tool("slow_echo", {"text": "done", "seconds": 0.5}, progress_callback=on_progress)
        finished = time.monotonic()
    assert result.content[0].text == "done"  # type: ignore[union-attr]
    assert len(seen) == 5
    assert seen[0] < finished - 0.3  # streamed as emitted, not in one burst with the result


async def test_sdk_elicitation_and_sampling_round_trip_through_input_required(conformance_server: LiveServer) -> None:
    # plan_reading and summarize are the same tools the 2025 tests drive with server-to-client
    # requests; here the SDK answers the input_required results and retries.
    async with sdk(conformance_server) as client:
        plan = await client.call_tool("plan_reading", {"topic": "owls"})
        summary = await client.call_tool("summarize", {"text": "a long story"})
        prompt = await client.get_prompt("test_input_required_result_prompt")
    assert plan.content[0].text == "Plan: read 4 books about owls."  # type: ignore[union-attr]
    assert summary.content[0].text == "Summary: sampled<Summarise in one sentence: a long story>"  # type: ignore[union-attr]
    assert prompt.messages


async def test_sdk_closing_the_stream_cancels_the_call(conformance_server: LiveServer, live_db: LiveDatabase) -> None:
    marker = f"cancel-2026-{time.time_ns()}"
    started = asyncio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with sdk(conformance_server) as client:
        task = asyncio.ensure_future(
            client.call_tool("slow_echo", {"text": marker, "seconds": 20}, progress_callback=on_progress)
        )
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()  # the SDK drops the response stream: that is the cancellation on HTTP
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await client.call_tool("echo", {"text": "after"})
        assert after.content[0].text == "after"  # type: ignore[union-attr]
    assert await wait_for_call_log(live_db, marker) == "cancelled"


async def test_sdk_listen_receives_list_changed(conformance_server: LiveServer) -> None:
    async with sdk(conformance_server) as client, client.listen(tools_list_changed=True) as subscription:
        await client.call_tool("test_trigger_tool_change", {})
        event = await asyncio.wait_for(anext(aiter(subscription)), 10)
        assert isinstance(event, ToolsListChanged)



# -- raw HTTP: results ---------------------------------------------------------------------------
async def test_discover_result_shape(conformance_server: LiveServer) -> None:
    response = await post(conformance_server, rpc("server/discover", {"_meta": meta()}))
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][0] == V and "2025-11-25" in result["supportedVersions"]
    assert result["capabilities"]["tools"] == {"listChanged": True}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp_sse demo"
    assert result["ttlMs"] == 0 and result["cacheScope"] == "private"


async def test_cache_hints_on_lists_and_reads_only(conformance_server: LiveServer) -> None:
    for method, params in (
        ("tools/list", {}),
        ("prompts/list", {}),
        ("resources/list", {}),
        ("resources/templates/list", {}),
        ("resources/read", {"uri": "test://static-text"}),
    ):
        response = await post(conformance_server, rpc(method, {**params, "_meta": meta()}))
        result = response.json()["result"]
        assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private"), method
    result = await call(conformance_server, "echo", {"text": "x"})
    assert result["result"]["resultType"] == "complete" and "ttlMs" not in result["result"]


async def test_client_info_is_optional(conformance_server: LiveServer) -> None:
    response = await post(conformance_server, rpc("tools/list", {"_meta": {PV: V, CAPS: {}}}))
    assert response.status_code == 200 and "tools" in response.json()["result"]


async def test_notification_post_is_accepted_with_202(conformance_server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "method": "notifications/whatever", "params": {"_meta": meta()}}
    response = await post(conformance_server, body)
    assert response.status_code == 202 and response.content == b""


async def test_log_messages_only_for_requests_with_a_log_level(conformance_server: LiveServer) -> None:
    quiet = await call(conformance_server, "test_logging_tool", {})
    assert quiet["result"]["content"][0]["text"] == "Logging tool finished"  # plain JSON: nothing streamed
    body = rpc("tools/call", {"name": "test_logging_tool", "arguments": {}, "_meta": meta(**{LOG: "info"})})
    async with (
        httpx.AsyncClient(timeout=20) as http,
        http.stream("POST", conformance_server.mcp_url, json=body, headers=mirrored(body)) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-accel-buffering"] == "no"
        messages = [event.json() async for event in events(response)]
    assert [m.get("method") for m in messages[:3]] == ["notifications/message"] * 3
    assert messages[-1]["id"] == 1 and messages[-1]["result"]["resultType"] == "complete"
    assert all("id" not in m for m in messages[:-1])  # no server-initiated requests on the stream

    warnings_only = rpc("tools/call", {"name": "test_logging_tool", "arguments": {}, "_meta": meta(**{LOG: "warning"})})
    response = await post(conformance_server, warnings_only)
    assert response.headers["content-type"] == "application/json"  # info is below the threshold


async def test_input_required_request_state_round_trip(conformance_server: LiveServer) -> None:
    first = (await call(conformance_server, "test_input_required_result_request_state", {}))["result"]
    assert first["resultType"] == "input_required"
    assert first["inputRequests"]["confirm"]["method"] == "elicitation/create"
    assert "ttlMs" not in first  # interim results carry no caching hints
    answer = {"confirm": {"action": "accept", "content": {"ok": True}}}
    second = await call(
        conformance_server,
        "test_input_required_result_request_state",
        {},
        inputResponses=answer,
        requestState=first["requestState"],
    )
    assert second["result"]["content"][0]["text"] == "state-ok: confirmed=True"


async def test_multiple_inputs_arrive_in_one_round(conformance_server: LiveServer) -> None:
    first = (await call(conformance_server, "test_input_required_result_multiple_inputs", {}))["result"]
    assert set(first["inputRequests"]) == {"user_name", "greeting", "client_roots"}


async def test_unnamed_questions_are_numbered(conformance_server: LiveServer) -> None:
    first = (await call(conformance_server, "plan_reading", {"topic": "owls"}))["result"]
    assert list(first["inputRequests"]) == ["input_0"]


async def test_tampered_request_state_is_rejected(conformance_server: LiveServer) -> None:
    """Case: requestState integrity (HMAC) failure -> JSON-RPC -32602."""
    first = (await call(conformance_server, "test_input_required_result_tampered_state", {}))["result"]
    token = first["requestState"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    answer = {"confirm": {"action": "accept", "content": {"ok": True}}}
    for bad in (forged, token + "-TAMPERED", 42):
        reply = await call(
            conformance_server, "test_input_required_result_tampered_state", {}, inputResponses=answer, requestState=bad
        )
        assert reply["error"]["code"] == -32602, reply


async def test_request_state_is_bound_to_the_request(conformance_server: LiveServer) -> None:
    """Case: a valid requestState replayed on different arguments -> -32602."""
    first = (await call(conformance_server, "plan_reading", {"topic": "owls"}))["result"]
    answer = {"input_0": {"action": "accept", "content": {"count": 2}}}
    reply = await call(
        conformance_server, "plan_reading", {"topic": "bats"}, inputResponses=answer, requestState=first["requestState"]
    )
    assert reply["error"]["code"] == -32602 and "different request" in reply["error"]["message"]


async def test_request_state_is_bound_to_the_principal(conformance_server: LiveServer, live_db: LiveDatabase) -> None:
    """Case: a requestState minted for an anonymous caller, replayed with a token -> -32602."""
    live_db.create_user("mrtr-user")
    token = live_db.create_token("mrtr-user")
    first = (await call(conformance_server, "plan_reading", {"topic": "owls"}))["result"]
    body = rpc(
        "tools/call",
        {
            "name": "plan_reading",
            "arguments": {"topic": "owls"},
            "_meta": meta(),
            "inputResponses": {"input_0": {"action": "accept", "content": {"count": 2}}},
            "requestState": first["requestState"],
        },
    )
    response = await post(conformance_server, body, authorization=f"Bearer {token}")
    assert response.json()["error"]["code"] == -32602
    assert "another caller" in response.json()["error"]["message"]


@override_settings(MCP_SSE={"REQUEST_STATE_TTL": -1})
def test_expired_request_state_is_rejected() -> None:
    """Case: requestState past its TTL -> -32602 (signed and checked in-process)."""
    token = mrtr.sign_request_state({"v": 1, "p": "anonymous", "m": "tools/call", "d": "x", "a": {}, "s": {}})
    with pytest.raises(MCPError, match="expired") as caught:
        mrtr.load_request_state(token, principal="anonymous", method="tools/call", digest="x")
    assert caught.value.code == -32602


async def test_invalid_input_responses_are_protocol_errors(conformance_server: LiveServer) -> None:
    """Case: inputResponses that are not objects -> -32602; wrong keys -> asked again."""
    tool = "test_input_required_result_elicitation"
    null = await call(conformance_server, tool, {}, inputResponses=None)
    assert null["error"]["code"] == -32602
    number = await call(conformance_server, tool, {}, inputResponses={"user_name": 12345})
    assert number["error"]["code"] == -32602
    wrong_key = await call(conformance_server, tool, {}, inputResponses={"wrong_key": {"action": "accept", "content": {}}})
    assert wrong_key["result"]["resultType"] == "input_required"


# -- raw HTTP: rejections ------------------------------------------------------------------------
async def test_missing_meta_is_400_invalid_params(conformance_server: LiveServer) -> None:
    """Case: _meta missing -> 400 + -32602."""
    assert_error(await post(conformance_server, rpc("tools/list", {}, 7)), 400, -32602, 7)


@pytest.mark.parametrize("missing", [PV, CAPS])
async def test_meta_without_a_required_field_is_400_invalid_params(conformance_server: LiveServer, missing: str) -> None:
    """Case: _meta lacking protocolVersion / clientCapabilities -> 400 + -32602."""
    incomplete = {k: v for k, v in meta().items() if k != missing}
    assert_error(await post(conformance_server, rpc("tools/list", {"_meta": incomplete}, 8)), 400, -32602, 8)


async def test_unknown_log_level_is_400_invalid_params(conformance_server: LiveServer) -> None:
    """Case: _meta logLevel not an RFC 5424 level -> 400 + -32602."""
    body = rpc("tools/list", {"_meta": meta(**{LOG: "loud"})})
    assert_error(await post(conformance_server, body), 400, -32602)


async def test_missing_protocol_version_header_is_header_mismatch(conformance_server: LiveServer) -> None:
    """Case: MCP-Protocol-Version header absent -> 400 + -32020."""
    body = rpc("tools/list", {"_meta": meta()})
    assert_error(await post(conformance_server, body, mcp_protocol_version=None), 400, -32020)


async def test_header_body_version_mismatch_is_header_mismatch(conformance_server: LiveServer) -> None:
    """Case: MCP-Protocol-Version header differs from _meta protocolVersion -> 400 + -32020."""
    body = rpc("tools/list", {"_meta": {**meta(), PV: "2027-01-01"}})
    assert_error(await post(conformance_server, body), 400, -32020)


async def test_unsupported_version_is_400_with_the_supported_list(conformance_server: LiveServer) -> None:
    """Case: a version the server does not speak -> 400 + -32022 with data.supported/requested."""
    body = rpc("server/discover", {"_meta": {**meta(), PV: "1999-01-01"}}, "v-probe")
    error = assert_error(await post(conformance_server, body, mcp_protocol_version="1999-01-01"), 400, -32022, "v-probe")
    assert error["data"]["requested"] == "1999-01-01"
    assert V in error["data"]["supported"]


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"mcp_method": None}, "Mcp-Method missing"),
        ({"mcp_method": "tools/call"}, "Mcp-Method differs from the body"),
        ({"mcp_method": "TOOLS/LIST"}, "values are case-sensitive"),
    ],
)
async def test_method_header_mismatch(conformance_server: LiveServer, overrides: dict[str, str | None], why: str) -> None:
    """Case: Mcp-Method missing / different / differently cased -> 400 + -32020."""
    assert_error(await post(conformance_server, rpc("tools/list", {"_meta": meta()}), **overrides), 400, -32020)


async def raw_post(server: LiveServer, body: dict[str, Any], header_lines: list[str]) -> tuple[int, Any]:
    """POST over a bare socket, for header spellings HTTP client libraries refuse to send."""
    payload = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = [
        "POST /mcp HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Connection: close",
        f"Content-Length: {len(payload)}",
        *header_lines,
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(content)


async def test_header_names_are_case_insensitive_and_values_trimmed(conformance_server: LiveServer) -> None:
    """Case: accepted variations: upper-case names, spaces and tabs around values."""
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}, "_meta": meta()})
    status, payload = await raw_post(
        conformance_server,
        body,
        [
            "ACCEPT: application/json, text/event-stream",
            "content-TYPE: application/json",
            f"MCP-PROTOCOL-VERSION: {V}",
            "MCP-METHOD:   tools/call  ",
            "mcp-name: \techo ",
        ],
    )
    assert status == 200 and payload["result"]["content"][0]["text"] == "x"


@pytest.mark.parametrize(
    ("name_header", "status"),
    [(None, 400), ("echo2", 400), ("=?base64?ZWNobw==?=", 200), ("=?base64?ZWNobw?=", 400)],
)
async def test_name_header(conformance_server: LiveServer, name_header: str | None, status: int) -> None:
    """Case: Mcp-Name missing / different / Base64 of the name (ok) / bad Base64 -> 400 + -32020."""
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}, "_meta": meta()})
    response = await post(conformance_server, body, mcp_name=name_header)
    if status == 400:
        assert_error(response, 400, -32020)
    else:
        assert response.status_code == 200 and "result" in response.json()


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("us-west1", 200),
        ("=?base64?" + base64.b64encode(b"us-west1").decode() + "?=", 200),
        (None, 400),  # body has the value, header omitted
        ("eu-north1", 400),  # different value
        ("=?base64?dXMtd2VzdDE?=", 400),  # bad padding
    ],
)
async def test_custom_parameter_header(conformance_server: LiveServer, header: str | None, status: int) -> None:
    """Case: Mcp-Param-Region (x-mcp-header) validation -> 400 + -32020 on any disagreement."""
    body = rpc("tools/call", {"name": "test_x_mcp_header", "arguments": {"region": "us-west1"}, "_meta": meta()})
    response = await post(conformance_server, body, mcp_param_region=header)
    if status == 400:
        assert_error(response, 400, -32020)
    else:
        assert response.json()["result"]["content"][0]["text"] == "region=us-west1"


@pytest.mark.parametrize(
    "method",
    ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe", "tasks/list", "nope"],
)
async def test_removed_and_unknown_methods_are_404(conformance_server: LiveServer, method: str) -> None:
    """Case: methods 2026-07-28 removed, and unknown ones -> HTTP 404 + -32601, id preserved."""
    assert_error(await post(conformance_server, rpc(method, {"_meta": meta()}, f"id-{method}")), 404, -32601, f"id-{method}")


async def test_missing_client_capability_is_400(conformance_server: LiveServer) -> None:
    """Case: the tool needs sampling, the client did not declare it -> 400 + -32021."""
    body = rpc("tools/call", {"name": "test_missing_capability", "arguments": {}, "_meta": meta(caps={})})
    error = assert_error(await post(conformance_server, body), 400, -32021)
    assert error["data"] == {"requiredCapabilities": {"sampling": {}}}


async def test_resource_not_found_is_invalid_params_with_the_uri(conformance_server: LiveServer) -> None:
    """Case: unknown resource -> -32602 with data.uri (never -32002 in 2026)."""
    body = rpc("resources/read", {"uri": "test://missing", "_meta": meta()})
    error = assert_error(await post(conformance_server, body), 200, -32602)
    assert error["data"] == {"uri": "test://missing"}


async def test_get_and_delete_without_a_session_are_405(conformance_server: LiveServer) -> None:
    """Case: legacy GET stream / DELETE from a 2026 client -> 405."""
    async with httpx.AsyncClient(timeout=20) as http:
        headers = {"accept": "text/event-stream", "mcp-protocol-version": V}
        get = await http.get(conformance_server.mcp_url, headers=headers)
        delete = await http.delete(conformance_server.mcp_url, headers=headers)
    assert get.status_code == 405 and delete.status_code == 405


async def test_closing_the_stream_cancels_the_tool(conformance_server: LiveServer, live_db: LiveDatabase) -> None:
    """Case: the client closes the SSE response -> the call is cancelled (call log 'cancelled')."""
    marker = f"raw-cancel-{time.time_ns()}"
    body = rpc(
        "tools/call",
        {"name": "slow_echo", "arguments": {"text": marker, "seconds": 20}, "_meta": meta(progressToken="p1")},
    )
    async with (
        httpx.AsyncClient(timeout=20) as http,
        http.stream("POST", conformance_server.mcp_url, json=body, headers=mirrored(body)) as response,
    ):
        first = await next_event(events(response))
        assert first.json()["method"] == "notifications/progress"
    assert await wait_for_call_log(live_db, marker) == "cancelled"


# -- subscriptions/listen --------------------------------------------------------------------------
@asynccontextmanager
async def listening(
    server: LiveServer, notifications: dict[str, Any], request_id: Any = "listen-1"
) -> AsyncIterator[Any]:
    body = rpc("subscriptions/listen", {"notifications": notifications, "_meta": meta()}, request_id)
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(20, read=30)) as http,
        http.stream("POST", server.mcp_url, json=body, headers=mirrored(body)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        yield events(response)


async def wait_for_method(stream: AsyncIterator[Event], method: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = (await next_event(stream, max(0.1, deadline - time.monotonic()))).json()
        if message.get("method") == method:
            return dict(message)


async def test_listen_acknowledges_then_tags_and_filters(conformance_server: LiveServer) -> None:
    async with listening(
        conformance_server,
        {"toolsListChanged": True, "resourceSubscriptions": ["test://watched-resource", "test://nothing"]},
    ) as stream:
        ack = (await next_event(stream)).json()
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        assert ack["params"]["_meta"][SUB] == "listen-1"
        # Unknown URIs are not honoured; unrequested kinds are not offered.
        assert ack["params"]["notifications"] == {
            "toolsListChanged": True,
            "resourceSubscriptions": ["test://watched-resource"],
        }
        await call(conformance_server, "test_trigger_prompt_change", {})  # not asked for: never delivered
        await call(conformance_server, "test_trigger_resource_update", {})
        updated = (await next_event(stream)).json()
        assert updated["method"] == "notifications/resources/updated"
        assert updated["params"] == {"uri": "test://watched-resource", "_meta": {SUB: "listen-1"}}
        await call(conformance_server, "test_trigger_tool_change", {})
        changed = (await next_event(stream)).json()
        assert changed == {
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
            "params": {"_meta": {SUB: "listen-1"}},
        }


async def test_listen_with_a_malformed_filter_is_invalid_params(conformance_server: LiveServer) -> None:
    body = rpc("subscriptions/listen", {"notifications": {"toolsListChanged": "yes"}, "_meta": meta()})
    assert_error(await post(conformance_server, body), 200, -32602)


async def test_listen_streams_send_keepalive_comments(server_factory: Any) -> None:
    server = server_factory(extra_env={"MCP_KEEPALIVE_INTERVAL": "0.2"})
    body = rpc("subscriptions/listen", {"notifications": {"promptsListChanged": True}, "_meta": meta()})
    comments = 0
    async with (
        httpx.AsyncClient(timeout=20) as http,
        http.stream("POST", server.mcp_url, json=body, headers=mirrored(body)) as response,
    ):
        lines = response.aiter_lines()
        deadline = time.monotonic() + 10
        while comments < 2 and time.monotonic() < deadline:
            line = await asyncio.wait_for(anext(lines), 5)
            comments += line.startswith(":")
    assert comments >= 2
