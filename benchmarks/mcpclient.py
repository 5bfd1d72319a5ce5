"""Raw MCP JSON-RPC sessions over the lean HTTP client, one class per transport.

- :class:`StreamableSession`: stateful Streamable HTTP (initialize, ``Mcp-Session-Id``); replies
  as JSON or as an SSE stream, both understood.
- :class:`StatelessSession`: 2026-07-28 (no handshake, per-request ``_meta`` and headers).
- :class:`LegacySession`: 2024-11-05 HTTP+SSE (GET the stream, POST to the ``endpoint`` URL,
  match replies on the stream by id).

Progress notifications received on a call's stream go to ``on_progress(params, received_at)``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .httpclient import Connection, HTTPProtocolError, HTTPResponse, ResponseHead, SSEParser, build_request

STREAMABLE_VERSION = "2025-11-25"
LEGACY_VERSION = "2024-11-05"
MODERN_VERSION = "2026-07-28"
META = "io.modelcontextprotocol/"
CLIENT_INFO = {"name": "mcp-sse-bench", "version": "1.0"}

ProgressSink = Callable[[dict[str, Any], float], None]


class MCPCallError(Exception):
    """A call that did not end in a JSON-RPC result (HTTP error, JSON-RPC error, lost stream)."""


def tools_call(request_id: int, name: str, arguments: dict[str, Any], progress_token: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def initialize_message(request_id: int, version: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT_INFO},
    }


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _is_reply(message: dict[str, Any]) -> bool:
    return "id" in message and ("result" in message or "error" in message)


def _result_of(reply: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        raise MCPCallError(f"JSON-RPC error: {reply['error']}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise MCPCallError(f"no result in {reply!r}")
    return result


class StreamableSession:
    """A stateful Streamable HTTP session on one keep-alive connection."""

    def __init__(self, host: str, port: int, path: str = "/mcp", on_progress: ProgressSink | None = None) -> None:
        self.conn = Connection(host, port)
        self.path = path
        self.on_progress = on_progress
        self.next_id = 0
        self.session_id = ""
        self.version = STREAMABLE_VERSION
        self.headers: list[tuple[str, str]] = [
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
        ]
        self.sse_replies = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def initialize(self) -> dict[str, Any]:
        await self.conn.open()
        response = await self.conn.request(
            build_request(
                "POST", self.path, self.conn.authority, self.headers, self._encode(initialize_message(0, self.version))
            )
        )
        if response.status != 200:
            raise MCPCallError(f"initialize: HTTP {response.status}: {response.body[:300]!r}")
        self.session_id = response.head.headers.get("mcp-session-id", "")
        reply = self._reply_from(response, 0)
        result = _result_of(reply)
        self.version = str(result.get("protocolVersion") or self.version)
        if self.session_id:
            self.headers.append(("Mcp-Session-Id", self.session_id))
        self.headers.append(("MCP-Protocol-Version", self.version))
        done = await self.conn.request(
            build_request("POST", self.path, self.conn.authority, self.headers, self._encode(INITIALIZED))
        )
        if done.status not in (200, 202, 204):
            raise MCPCallError(f"notifications/initialized: HTTP {done.status}")
        return result

    @staticmethod
    def _encode(message: dict[str, Any]) -> bytes:
        return json.dumps(message, separators=(",", ":")).encode()

    def _reply_from(self, response: HTTPResponse, request_id: int) -> dict[str, Any]:
        content_type = response.head.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            parser = SSEParser()
            for event in parser.feed(response.body):
                if event.data:
                    message = json.loads(event.data)
                    if _is_reply(message) and message["id"] == request_id:
                        return message
            raise MCPCallError("no reply on the SSE response")
        reply: dict[str, Any] = json.loads(response.body)
        return reply

    async def call_tool(self, name: str, arguments: dict[str, Any], progress_token: Any = None) -> dict[str, Any]:
        request_id = self._id()
        await self.conn.ensure_open()
        body = self._encode(tools_call(request_id, name, arguments, progress_token))
        self.conn.send(build_request("POST", self.path, self.conn.authority, self.headers, body))
        head = await self.conn.read_head()
        if head.status != 200:
            await self.conn.read_body(head)
            raise MCPCallError(f"HTTP {head.status}")
        if head.headers.get("content-type", "").startswith("text/event-stream"):
            self.sse_replies += 1
            reply = await self._read_sse_reply(head, request_id)
        else:
            reply = json.loads(await self.conn.read_body(head))
        return _result_of(reply)

    async def _read_sse_reply(self, head: ResponseHead, request_id: int) -> dict[str, Any]:
        parser = SSEParser()
        reply: dict[str, Any] | None = None
        async for piece in self.conn.iter_body(head):
            for event in parser.feed(piece):
                if not event.data:
                    continue  # priming event
                message = json.loads(event.data)
                if _is_reply(message):
                    if message["id"] == request_id:
                        reply = message
                elif message.get("method") == "notifications/progress" and self.on_progress is not None:
                    self.on_progress(message.get("params") or {}, time.time())
        if reply is None:
            raise MCPCallError("the SSE response ended without the reply")
        return reply

    async def close(self) -> None:
        if self.session_id and self.conn.is_open:
            try:
                await asyncio.wait_for(
                    self.conn.request(build_request("DELETE", self.path, self.conn.authority, self.headers)), 5
                )
            except (OSError, HTTPProtocolError, TimeoutError):
                pass
        self.conn.close()


class StatelessSession(StreamableSession):
    """2026-07-28: every request self-contained; no initialize, no session id."""

    def __init__(self, host: str, port: int, path: str = "/mcp", on_progress: ProgressSink | None = None) -> None:
        super().__init__(host, port, path, on_progress)
        self.version = MODERN_VERSION
        self.headers.append(("MCP-Protocol-Version", MODERN_VERSION))
        self.headers.append(("Mcp-Method", "tools/call"))
        self.meta = {
            f"{META}protocolVersion": MODERN_VERSION,
            f"{META}clientCapabilities": {},
            f"{META}clientInfo": CLIENT_INFO,
        }

    async def initialize(self) -> dict[str, Any]:
        await self.conn.open()
        return {}

    async def call_tool(self, name: str, arguments: dict[str, Any], progress_token: Any = None) -> dict[str, Any]:
        request_id = self._id()
        await self.conn.ensure_open()
        message = tools_call(request_id, name, arguments, progress_token)
        message["params"].setdefault("_meta", {}).update(self.meta)
        headers = [*self.headers, ("Mcp-Name", name)]
        self.conn.send(build_request("POST", self.path, self.conn.authority, headers, self._encode(message)))
        head = await self.conn.read_head()
        if head.headers.get("content-type", "").startswith("text/event-stream"):
            reply = await self._read_sse_reply(head, request_id)
        else:
            body = await self.conn.read_body(head)
            if head.status != 200:
                raise MCPCallError(f"HTTP {head.status}: {body[:300].decode(errors='replace')}")
            reply = json.loads(body)
        return _result_of(reply)

    async def close(self) -> None:
        self.conn.close()


class LegacySession:
    """2024-11-05 HTTP+SSE: a held GET stream plus POSTs on a second keep-alive connection.

    ``post_port`` may differ from ``stream_port`` (two worker processes behind no balancer:
    the POST then reaches the stream's process through the channel layer).
    """

    def __init__(
        self,
        host: str,
        stream_port: int,
        post_port: int | None = None,
        sse_path: str = "/mcp/sse",
        on_progress: ProgressSink | None = None,
    ) -> None:
        self.stream = Connection(host, stream_port)
        self.post = Connection(host, post_port or stream_port)
        self.sse_path = sse_path
        self.on_progress = on_progress
        self.endpoint = ""
        self.next_id = 0
        self.pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.endpoint_ready: asyncio.Future[str] | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.stream_open = False
        self.keepalives = 0
        self.post_headers = [("Content-Type", "application/json")]

    async def open(self, open_timeout: float = 10.0) -> None:
        """Open the stream and wait for its ``endpoint`` event."""
        await self.stream.open(open_timeout)
        self.stream.send(build_request("GET", self.sse_path, self.stream.authority, [("Accept", "text/event-stream")]))
        head = await asyncio.wait_for(self.stream.read_head(), open_timeout)
        if head.status != 200:
            self.stream.close()
            raise MCPCallError(f"GET {self.sse_path}: HTTP {head.status}")
        self.endpoint_ready = asyncio.get_running_loop().create_future()
        self.stream_open = True
        self.reader_task = asyncio.create_task(self._read_stream(head))
        endpoint = await asyncio.wait_for(asyncio.shield(self.endpoint_ready), open_timeout)
        parts = urlsplit(endpoint)
        self.endpoint = parts.path + (f"?{parts.query}" if parts.query else "")

    async def _read_stream(self, head: ResponseHead) -> None:
        parser = SSEParser()
        assert self.endpoint_ready is not None
        try:
            async for piece in self.stream.iter_body(head):
                for event in parser.feed(piece):
                    if event.event == "endpoint":
                        if not self.endpoint_ready.done():
                            self.endpoint_ready.set_result(event.data)
                        continue
                    if event.event != "message" or not event.data:
                        continue
                    message = json.loads(event.data)
                    if _is_reply(message):
                        future = self.pending.pop(message["id"], None)
                        if future is not None and not future.done():
                            future.set_result(message)
                    elif message.get("method") == "notifications/progress" and self.on_progress is not None:
                        self.on_progress(message.get("params") or {}, time.time())
                self.keepalives = parser.comments
        except (OSError, HTTPProtocolError):
            pass
        finally:
            self.stream_open = False
            error = MCPCallError("the SSE stream ended")
            if not self.endpoint_ready.done():
                self.endpoint_ready.set_exception(error)
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        response = await self.post.request(
            build_request("POST", self.endpoint, self.post.authority, self.post_headers, body)
        )
        if response.status not in (200, 202, 204):
            raise MCPCallError(f"POST {self.endpoint}: HTTP {response.status}: {response.body[:200]!r}")

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if not self.stream_open:
            raise MCPCallError("the SSE stream is closed")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[message["id"]] = future
        try:
            await self.send(message)
        except BaseException:
            self.pending.pop(message["id"], None)
            raise
        return await future

    async def initialize(self) -> dict[str, Any]:
        if not self.endpoint:
            await self.open()
        result = _result_of(await self.request(initialize_message(0, LEGACY_VERSION)))
        await self.send(INITIALIZED)
        return result

    async def call_tool(self, name: str, arguments: dict[str, Any], progress_token: Any = None) -> dict[str, Any]:
        self.next_id += 1
        return _result_of(await self.request(tools_call(self.next_id, name, arguments, progress_token)))

    async def close(self) -> None:
        self.stream.close()
        self.post.close()
        if self.reader_task is not None:
            self.reader_task.cancel()
            try:
                await self.reader_task
            except (asyncio.CancelledError, Exception):
                pass
