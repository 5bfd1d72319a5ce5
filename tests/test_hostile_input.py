"""Hostile input, in-process through the real ASGI stack on every transport that shares the path
(Streamable HTTP stateful, stateless 2026-07-28, legacy HTTP+SSE): lone UTF-16 surrogates, huge
names echoed into errors, and the extra arguments some clients add to every call.

Before the fixes (d423223): a lone surrogate in tool arguments was HTTP 500 / -32603 "Internal
server error" and its call log entry was lost (the writer's UTF-8 encoding failed); a 100 KB
method name came back whole in the -32601 message; n8n's ``toolCallId`` failed validation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.test import override_settings
from django.utils.module_loading import import_string
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse import tools
from mcp_sse.models import AccessToken, CallLog
from mcp_sse.registry.base import default_registry
from mcp_sse.testing import MCPTestClient, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

V2026 = "2026-07-28"
TIMEOUT = 30
SURROGATE_ERROR = "Invalid arguments:\n- text: not valid Unicode text: a lone UTF-16 surrogate (\\ud800) at character 7"
HUGE = "x" * 100_000
# What an error message keeps of a client-supplied value (mcp_sse.protocol.errors.echo).
ECHO_MAX_CHARS = 200
ELLIPSIS = "\u2026"


@pytest.fixture(autouse=True)
async def close_thread_connections() -> AsyncIterator[None]:
    """ORM calls from async code run in asgiref's thread; close its connections after each test
    so the test database can be dropped (PostgreSQL refuses while a session is open)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def mcp_settings(**overrides: Any) -> Any:
    return override_settings(MCP_SSE={**settings.MCP_SSE, **overrides})


def body(request_id: Any, method: str, params: dict[str, Any] | None = None) -> bytes:
    """A request as a client's JSON encoder writes it: a lone surrogate becomes the JSON escape
    "\\ud800" (the stdlib's ensure_ascii), not raw bytes. Deliberately not our own encoder."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def meta() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "hostile", "version": "1"},
    }


# -- the three transports, in-process ---------------------------------------------------------
class Streamable:
    """A stateful 2025-11-25 session (MCPTestClient)."""

    name = "streamable-http"

    def __init__(self) -> None:
        self.client = MCPTestClient()

    async def __aenter__(self) -> Streamable:
        await self.client.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    async def send(self, request_id: Any, method: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        status, headers, content = await self.client.http("POST", body(request_id, method, params))
        if headers.get("content-type", "").startswith("text/event-stream"):
            events = [json.loads(e["data"]) for e in parse_sse(content) if e["data"]]
            return status, next(e for e in events if "method" not in e)
        return status, json.loads(content)


class Stateless:
    """Stateless 2026-07-28 requests: ``_meta`` in the body, mirrored MCP headers."""

    name = "stateless"

    def __init__(self) -> None:
        self.client = MCPTestClient()

    async def __aenter__(self) -> Stateless:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.flush_call_log()

    async def send(
        self, request_id: Any, method: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        params = {**(params or {}), "_meta": meta()}
        mirrored = {"mcp-protocol-version": V2026, "mcp-method": method}
        mirrored |= headers or {}
        if method in ("tools/call", "prompts/get"):
            mirrored.setdefault("mcp-name", params["name"])
        if method == "resources/read":
            mirrored.setdefault("mcp-name", params["uri"])
        status, _, content = await self.client.http("POST", body(request_id, method, params), mirrored)
        return status, json.loads(content)


class Legacy:
    """The 2024-11-05 HTTP+SSE transport: a held GET stream, POSTs answered on it."""

    name = "sse"

    def __init__(self) -> None:
        self.application = import_string(settings.ASGI_APPLICATION)
        self.buffer = b""

    def scope(self, method: str, path: str, query: bytes = b"") -> dict[str, Any]:
        headers = [(b"host", b"localhost"), (b"accept", b"text/event-stream"), (b"content-type", b"application/json")]
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 80),
        }

    async def __aenter__(self) -> Legacy:
        self.stream = ApplicationCommunicator(self.application, self.scope("GET", "/mcp/sse"))
        await self.stream.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await self.stream.receive_output(TIMEOUT)
        assert start["status"] == 200
        endpoint = await self.next_event("endpoint")
        self.session_query = endpoint.split("?", 1)[1].encode()
        await self.send(0, "initialize", {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {}})
        await self.post(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stream.send_input({"type": "http.disconnect"})
        await self.stream.wait(TIMEOUT)
        from mcp_sse.audit import get_recorder

        await get_recorder().flush()

    async def next_event(self, kind: str) -> str:
        while True:
            if b"\n\n" in self.buffer:
                block, self.buffer = self.buffer.split(b"\n\n", 1)
                events = parse_sse(block + b"\n\n")
                if events and events[0].get("event") == kind:
                    return str(events[0]["data"])
                continue
            message = await self.stream.receive_output(TIMEOUT)
            self.buffer += message.get("body", b"")
            if message["type"] != "http.response.body" or not message.get("more_body", False):
                raise AssertionError(f"the stream ended before a {kind!r} event: {self.buffer[-300:]!r}")

    async def post(self, content: bytes) -> int:
        post = ApplicationCommunicator(self.application, self.scope("POST", "/mcp/messages", self.session_query))
        await post.send_input({"type": "http.request", "body": content, "more_body": False})
        start = await post.receive_output(TIMEOUT)
        while (await post.receive_output(TIMEOUT)).get("more_body"):
            pass
        await post.wait(TIMEOUT)
        return int(start["status"])

    async def send(self, request_id: Any, method: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        status = await self.post(body(request_id, method, params))
        assert status == 202
        return status, json.loads(await self.next_event("message"))


TRANSPORTS = [Streamable, Stateless, Legacy]


# -- lone surrogates ----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.__name__)
async def test_a_lone_surrogate_in_tool_arguments_is_a_tool_error_and_is_logged(transport: Any) -> None:
    """Before: HTTP 500, -32603 "Internal server error" (and the call log write failed).
    After: HTTP 200 (202 + the stream on legacy), a result with isError naming the argument; the
    call log keeps the entry with U+FFFD in place of the surrogate."""
    async with transport() as client:
        status, response = await client.send(7, "tools/call", {"name": "echo", "arguments": {"text": "marker-\ud800"}})
    assert status in (200, 202), response
    assert response["id"] == 7
    result = response["result"]
    assert (result["content"], result["isError"]) == ([{"type": "text", "text": SURROGATE_ERROR}], True)
    entry = await CallLog.objects.aget(tool="echo", request_id="7")
    assert entry.arguments == {"text": "marker-\ufffd"}
    assert (entry.outcome, entry.error, entry.transport) == ("tool_error", SURROGATE_ERROR, client.name)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.__name__)
async def test_lone_surrogates_outside_arguments_are_echoed_as_escapes(transport: Any) -> None:
    """An id or a method name holding one: before, HTTP 500 / -32603 (encoding the reply failed).
    After: the id comes back as the same JSON escape, the method is -32601 (HTTP 200; 202 and
    the stream on legacy) with the surrogate shown as the text "\\ud800". Stateless: no header
    can mirror such a method, so it is HTTP 400 / -32020 header mismatch, shown the same way."""
    async with transport() as client:
        if transport is Stateless:
            status, response = await client.send("id-\udc00", "no/such-\ud800", headers={"mcp-method": "no/such-"})
        else:
            status, response = await client.send("id-\udc00", "no/such-\ud800")
    assert response["id"] == "id-\udc00"
    if transport is Stateless:
        assert (status, response["error"]["code"]) == (400, -32020)
        assert response["error"]["message"] == (
            "Header mismatch: Mcp-Method header 'no/such-' does not match the body method 'no/such-\\ud800'"
        )
        return
    assert (status, response["error"]["code"]) == (202 if transport is Legacy else 200, -32601)
    assert response["error"]["message"] == "Method not found: no/such-\\ud800"


async def test_surrogates_in_a_prompt_or_a_uri_are_answered() -> None:
    async with Streamable() as client:
        status, unknown = await client.send(1, "resources/read", {"uri": "demo://\ud800"})
        assert (status, unknown["error"]["code"]) == (200, -32002)
        assert unknown["error"]["message"] == "Resource not found: demo://\\ud800"
        status, unknown = await client.send(2, "prompts/get", {"name": "p\ud800"})
        assert (status, unknown["error"]["message"]) == (200, "Unknown prompt: p\\ud800")


@given(
    st.recursive(
        st.text(st.sampled_from(["a", "\ud800", "\udfff", "\\", "\x00", "é", "\U0001f600"])),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=8,
    )
)
def test_our_json_output_always_encodes_and_gives_lone_surrogates_back(value: Any) -> None:
    """Before: dumps() raised UnicodeEncodeError for any string holding a lone surrogate. After:
    the text always encodes, and reads back as the stdlib's all-escapes JSON of the value does
    (the value itself, except that a high and a low surrogate side by side read back as the one
    character they spell, as any JSON decoder reads them)."""
    from mcp_sse.protocol import jsonutil

    text = jsonutil.dumps_str(value)
    text.encode("utf-8")  # never raises
    assert jsonutil.loads(jsonutil.dumps(value)) == jsonutil.loads(text) == json.loads(json.dumps(value))


def test_the_argument_check_names_nested_values_and_keys() -> None:
    from mcp_sse.registry.base import not_unicode

    assert not_unicode({"a": [{"b": "ok"}, {"b": "\udfff!"}], "k\ud83d": 1, "fine": "\U0001f600"}) == [
        "- a.1.b: not valid Unicode text: a lone UTF-16 surrogate (\\udfff) at character 0",
        "- k\\ud83d: not valid Unicode text: a lone UTF-16 surrogate (\\ud83d) at character 1",
    ]


# -- client-supplied text echoed into errors ---------------------------------------------------
def test_echo_bounds_and_escapes() -> None:
    from mcp_sse.protocol.errors import echo

    assert echo("short") == "short"
    assert echo(HUGE) == "x" * ECHO_MAX_CHARS + ELLIPSIS
    assert echo(HUGE, quoted=True) == repr("x" * ECHO_MAX_CHARS + ELLIPSIS)
    assert echo("a\nb\x00\ud800é") == "a\\x0ab\\x00\\ud800é"
    assert echo(None) == "None" and echo({"a": 1}) == "{'a': 1}"


def bounded(message: str, prefix: str) -> None:
    assert message.startswith(prefix), message
    assert ELLIPSIS in message and len(message) < len(prefix) + ECHO_MAX_CHARS + 100, message[:400]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.__name__)
async def test_a_100_kb_method_name_is_not_echoed_whole(transport: Any) -> None:
    """Before: -32601 with the whole 100 KB name in the message. After: the same code, the name
    cut to 200 characters and an ellipsis. (Stateless: HTTP 404, as 2026 answers an unknown
    method; the Mcp-Method header mirrors the name, as it must.)"""
    async with transport() as client:
        if transport is Stateless:
            status, response = await client.send(1, HUGE, headers={"mcp-method": HUGE})
        else:
            status, response = await client.send(1, HUGE)
    assert status == (404 if transport is Stateless else 202 if transport is Legacy else 200)
    assert response["error"]["code"] == -32601
    bounded(response["error"]["message"], "Method not found: xxx")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.__name__)
async def test_huge_names_uris_and_cursors_are_not_echoed_whole(transport: Any) -> None:
    """Every error that names what the client sent: unknown tool, prompt, resource URI (and its
    ``data.uri``), cursor. Before: each echoed the 100 KB value whole."""
    async with transport() as client:
        status, tool = await client.send(1, "tools/call", {"name": HUGE, "arguments": {}})
        assert (status in (200, 202), tool["error"]["code"]) == (True, -32602)
        bounded(tool["error"]["message"], "Unknown tool: xxx")
        status, prompt = await client.send(2, "prompts/get", {"name": HUGE})
        assert prompt["error"]["code"] == -32602
        bounded(prompt["error"]["message"], "Unknown prompt: xxx")
        status, resource = await client.send(3, "resources/read", {"uri": HUGE})
        # -32002 before 2026 (2025-11-25 still names it), -32602 in 2026-07-28.
        assert resource["error"]["code"] == (-32602 if transport is Stateless else -32002)
        bounded(resource["error"]["message"], "Resource not found: xxx")
        assert resource["error"]["data"] == {"uri": "x" * ECHO_MAX_CHARS + ELLIPSIS}
        status, listing = await client.send(4, "tools/list", {"cursor": HUGE})
        assert listing["error"]["code"] == -32602
        bounded(listing["error"]["message"], "Invalid cursor: 'xxx")


async def test_huge_values_in_2026_headers_and_versions_are_not_echoed_whole() -> None:
    client = Stateless()
    # The Mcp-Method header disagrees with a 100 KB body method: -32020, both cut.
    status, mismatch = await client.send(1, HUGE, headers={"mcp-method": "tools/list"})
    assert (status, mismatch["error"]["code"]) == (400, -32020)
    bounded(mismatch["error"]["message"], "Header mismatch: Mcp-Method header 'tools/list' does not match")
    # An unsupported 100 KB protocol version: -32022, cut in the message and in data.requested.
    params = {"_meta": {**meta(), "io.modelcontextprotocol/protocolVersion": HUGE}}
    status, _, content = await client.client.http(
        "POST", body(2, "tools/list", params), {"mcp-protocol-version": HUGE, "mcp-method": "tools/list"}
    )
    version = json.loads(content)
    assert (status, version["error"]["code"]) == (400, -32022)
    bounded(version["error"]["message"], "Unsupported protocol version: xxx")
    assert version["error"]["data"]["requested"] == "x" * ECHO_MAX_CHARS + ELLIPSIS


async def test_a_huge_stateful_protocol_version_header_is_not_echoed_whole() -> None:
    async with Streamable() as client:
        status, _, content = await client.client.http("POST", body(1, "ping"), {"mcp-protocol-version": HUGE})
    error = json.loads(content)["error"]
    assert (status, error["code"]) == (400, -32600)
    bounded(error["message"], "Bad Request: unsupported MCP-Protocol-Version 'xxx")
    assert error["data"]["requested"] == "x" * ECHO_MAX_CHARS + ELLIPSIS


async def test_huge_argument_names_and_values_are_not_echoed_whole_in_tool_errors() -> None:
    """Validation errors name the arguments (and Django's messages repeat the value): function
    tools (pydantic), model tools (unknown arguments, a primary key that is no integer)."""
    from asgiref.sync import sync_to_async

    user = await get_user_model().objects.acreate(username="huge", is_superuser=True, is_staff=True)
    _, token = await sync_to_async(AccessToken.objects.create_token)(user, name="t")
    async with MCPTestClient(token=token) as client:
        function = await client.call_tool("echo", {"text": "hi", HUGE: 1})
        unknown = await client.call_tool("author_list", {HUGE: 1})
        not_integer = await client.call_tool("author_get", {"id": HUGE})
    for result, prefix in (
        (function, "Invalid arguments:\n- xxx"),
        (unknown, "Invalid arguments:\n- xxx"),
        (not_integer, "Invalid arguments:\n- id: \u201cxxx"),
    ):
        assert result["isError"] is True
        bounded(result["content"][0]["text"], prefix)


# -- DROP_EXTRA_ARGUMENTS -----------------------------------------------------------------------
@pytest.fixture
def declares_tool_call_id() -> Iterator[str]:
    def keeps_its_own(text: str, toolCallId: str = "") -> str:
        return f"{text}/{toolCallId}"

    tools.tool(keeps_its_own)
    yield "keeps_its_own"
    default_registry.remove_tool("keeps_its_own")


async def test_extra_arguments_fail_validation_by_default() -> None:
    async with MCPTestClient() as client:
        result = await client.call_tool("echo", {"text": "hi", "toolCallId": "call_1"})
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("Invalid arguments:\n- toolCallId: Extra inputs are not permitted")


async def test_named_extra_arguments_are_dropped_before_validation(declares_tool_call_id: str) -> None:
    """Before: DROP_EXTRA_ARGUMENTS did not exist; the call was the tool error above."""
    with mcp_settings(DROP_EXTRA_ARGUMENTS=["toolCallId"]):
        async with MCPTestClient() as client:
            dropped = await client.call_tool("echo", {"text": "hi", "toolCallId": "call_1"})
            # Only the names listed: any other extra argument still fails validation.
            other = await client.call_tool("echo", {"text": "hi", "sessionId": "s"})
            # A tool that declares the name gets it.
            kept = await client.call_tool(declares_tool_call_id, {"text": "hi", "toolCallId": "call_2"})
    assert dropped["content"] == [{"type": "text", "text": "hi"}] and not dropped.get("isError")
    assert other["isError"] is True and "sessionId: Extra inputs are not permitted" in other["content"][0]["text"]
    assert kept["content"][0]["text"] == "hi/call_2"


async def test_model_tools_drop_them_too() -> None:
    from asgiref.sync import sync_to_async

    user = await get_user_model().objects.acreate(username="dropper", is_superuser=True, is_staff=True)
    _, token = await sync_to_async(AccessToken.objects.create_token)(user, name="t")
    async with MCPTestClient(token=token) as client:
        refused = await client.call_tool("author_list", {"toolCallId": "call_1"})
        with mcp_settings(DROP_EXTRA_ARGUMENTS=["toolCallId"]):
            listed = await client.call_tool("author_list", {"toolCallId": "call_1"})
    assert refused["isError"] is True
    assert refused["content"][0]["text"] == "Invalid arguments:\n- toolCallId: unknown argument"
    assert not listed.get("isError") and listed["structuredContent"]["total"] == 0


@pytest.mark.parametrize("value", ["toolCallId", [1], ["ok", None], {"toolCallId": True}])
def test_a_check_rejects_a_drop_list_of_the_wrong_type(value: Any) -> None:
    with mcp_settings(DROP_EXTRA_ARGUMENTS=value):
        found = [m for m in checks.run_checks() if m.id == "mcp_sse.E014"]
    assert len(found) == 1 and "DROP_EXTRA_ARGUMENTS" in found[0].msg


def test_a_list_of_names_passes_the_check() -> None:
    with mcp_settings(DROP_EXTRA_ARGUMENTS=["toolCallId", "sessionId"]):
        assert not [m for m in checks.run_checks() if m.id == "mcp_sse.E014"]
