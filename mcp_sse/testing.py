"""Test your tools through the real stack (routing, authentication, transport, dispatcher).

    from mcp_sse.testing import MCPTestClient

    async def test_echo(db):
        async with MCPTestClient(token=plaintext) as client:
            result = await client.call_tool("echo", {"text": "hi"})
            assert result["content"][0]["text"] == "hi"

It drives your project's ASGI application in-process (no server, no sockets) over Streamable
HTTP, follows SSE responses, collects notifications and answers server-to-client requests with
the callbacks you give it.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.testing import ApplicationCommunicator

from .protocol import jsonutil
from .protocol.versions import LATEST_HANDSHAKE_VERSION

ClientHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class MCPTestError(AssertionError):
    """The server answered with a JSON-RPC error (``.error`` holds it) or an HTTP error."""

    def __init__(self, message: str, error: dict[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error = error or {}
        self.status = status


def parse_sse(body: bytes) -> list[dict[str, Any]]:
    """Events of an SSE body: dicts with ``event``, ``id``, ``data`` (joined lines)."""
    events = []
    for block in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        event: dict[str, Any] = {}
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("event", "id", "retry"):
                event[name] = value
        if data or event:
            event["data"] = "\n".join(data)
            events.append(event)
    return events


def default_host() -> str:
    """A Host header the site accepts: ``testserver`` like Django's test client (Django's test
    runner and pytest-django add it to ``ALLOWED_HOSTS``), else ``localhost`` or the first
    allowed host."""
    from .transports.base import allowed_hosts, host_allowed

    candidates = ["testserver", "localhost", *(host.lstrip(".") for host in allowed_hosts() if host != "*")]
    return next((host for host in candidates if host and host_allowed(host)), "testserver")


class MCPTestClient:
    """An MCP client for tests. ``host`` is the Host header sent (default: one ``ALLOWED_HOSTS``
    accepts, see :func:`default_host`)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        application: Any = None,
        protocol_version: str = LATEST_HANDSHAKE_VERSION,
        path: str | None = None,
        host: str | None = None,
        capabilities: dict[str, Any] | None = None,
        on_request: ClientHandler | None = None,
        timeout: float = 30,
    ) -> None:
        self.token = token
        self._application = application
        self.protocol_version = protocol_version
        self.path = path
        self.host = host
        self.capabilities = (
            capabilities if capabilities is not None else {"sampling": {}, "elicitation": {}, "roots": {}}
        )
        self.on_request = on_request
        self.timeout = timeout
        self.session_id: str | None = None
        self.notifications: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @property
    def application(self) -> Any:
        if self._application is None:
            from django.conf import settings
            from django.utils.module_loading import import_string

            self._application = import_string(settings.ASGI_APPLICATION)
        return self._application

    async def __aenter__(self) -> MCPTestClient:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.session_id:
            await self.http("DELETE", b"")
            self.session_id = None
        await self.flush_call_log()

    async def flush_call_log(self) -> None:
        """Write buffered call log entries now (the recorder batches them off the call path)."""
        from .audit import get_recorder

        await get_recorder().flush()

    # -- HTTP ---------------------------------------------------------------------------
    def _path(self) -> str:
        if self.path is not None:
            return self.path
        from .conf import mcp_settings

        return mcp_settings.PATH_PREFIX

    def headers(self, extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
        headers = {
            "host": self.host or default_host(),
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
            headers["mcp-protocol-version"] = self.protocol_version
        headers.update(extra or {})
        return [(k.encode(), v.encode()) for k, v in headers.items()]

    async def http(
        self, method: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw request: (status, headers, body). SSE bodies are read to the end."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": self._path(),
            "raw_path": self._path().encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self.headers(headers),
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 80),
        }
        communicator = ApplicationCommunicator(self.application, scope)
        await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await communicator.receive_output(self.timeout)
        status = start["status"]
        response_headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        chunks = []
        while True:
            message = await communicator.receive_output(self.timeout)
            chunks.append(message.get("body", b""))
            if response_headers.get("content-type", "").startswith("text/event-stream"):
                await self._answer_server_requests(b"".join(chunks))
            if not message.get("more_body"):
                break
        await communicator.wait(self.timeout)
        return status, response_headers, b"".join(chunks)

    async def _answer_server_requests(self, body: bytes) -> None:
        answered: set[Any] = getattr(self, "_answered", set())
        self._answered = answered
        for event in parse_sse(body):
            if not event["data"]:
                continue
            message = jsonutil.loads(event["data"])
            if "method" in message and "id" in message and message["id"] not in answered:
                answered.add(message["id"])
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
                if self.on_request is None:
                    reply["error"] = {"code": -32601, "message": "the test client does not handle requests"}
                else:
                    reply["result"] = await self.on_request(message["method"], message.get("params") or {})
                status, _, _ = await self.http("POST", jsonutil.dumps(reply))
                assert status == 202, f"posting a reply got HTTP {status}"

    # -- JSON-RPC -----------------------------------------------------------------------
    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request; return its result (raise :class:`MCPTestError` on an error)."""
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        status, headers, body = await self.http("POST", jsonutil.dumps(message))
        if status != 200:
            error = jsonutil.loads(body).get("error") if body.startswith(b"{") else None
            raise MCPTestError(f"HTTP {status}: {body[:300]!r}", error, status)
        if headers.get("content-type", "").startswith("text/event-stream"):
            response = None
            for event in parse_sse(body):
                if not event["data"]:
                    continue
                decoded = jsonutil.loads(event["data"])
                if decoded.get("id") == request_id and "method" not in decoded:
                    response = decoded
                elif "method" in decoded and "id" not in decoded:
                    self.notifications.append(decoded)
            if response is None:
                raise MCPTestError("the SSE stream ended without a response")
        else:
            response = jsonutil.loads(body)
        if "error" in response:
            raise MCPTestError(response["error"].get("message", "error"), response["error"], status)
        return response["result"]

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        status, _, _ = await self.http("POST", jsonutil.dumps(message))
        return status

    async def initialize(self) -> dict[str, Any]:
        request_id = next(self._ids)
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {
                "protocolVersion": self.protocol_version,
                "capabilities": self.capabilities,
                "clientInfo": {"name": "mcp_sse.testing", "version": "1"},
            },
        }
        status, headers, body = await self.http("POST", jsonutil.dumps(message))
        if status != 200:
            raise MCPTestError(f"initialize got HTTP {status}: {body[:300]!r}", status=status)
        response = jsonutil.loads(body)
        if "error" in response:
            raise MCPTestError(response["error"]["message"], response["error"], status)
        self.session_id = headers.get("mcp-session-id")
        self.protocol_version = response["result"]["protocolVersion"]
        await self.notify("notifications/initialized")
        return response["result"]

    async def list_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor = None
        while True:
            result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools.extend(result["tools"])
            cursor = result.get("nextCursor")
            if not cursor:
                return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *, progress_token: Any = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
        if progress_token is not None:
            params["_meta"] = {"progressToken": progress_token}
        return await self.request("tools/call", params)
