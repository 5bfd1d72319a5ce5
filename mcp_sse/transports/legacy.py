"""The 2024-11-05 HTTP+SSE transport: ``GET <prefix>/sse`` holds the stream, ``POST
<prefix>/messages?session_id=…`` carries client messages.

The POST may land on any worker. It is checked (session, principal), answered 202 at once and
forwarded through the channel layer to the consumer holding the stream, which serves it and
writes every reply, notification and server-to-client request as a ``message`` event.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, quote

from ..conf import mcp_settings
from ..notify import revokes
from ..protocol import jsonutil, sse
from ..protocol.errors import INVALID_REQUEST, PARSE_ERROR, MCPError
from ..protocol.jsonrpc import Notification, Request, Response, parse_message
from ..server.exchange import Exchange
from ..server.routing import BROADCAST_GROUP, request_token, session_group, token_of_server_request
from ..server.session import Session, sessions
from .base import HTTPError, MCPConsumer
from .serving import RequestServingConsumer, dispatcher

# Served in the background so that a long tool call never holds up the stream; everything
# else is answered in arrival order.
CONCURRENT_METHODS = ("tools/call", "resources/read", "prompts/get", "completion/complete")


class SSEStreamConsumer(RequestServingConsumer):
    transport_name = "sse"

    def session_id_for_routing(self) -> str | None:
        return None  # every message of the session reaches this consumer directly

    async def serve(self) -> None:
        if self.method != "GET":
            raise HTTPError(405, f"Method {self.method} not allowed", headers=[(b"allow", b"GET")])
        self.check_host_and_origin()
        self.caller = await self.authenticate()
        accept = self.headers.get("accept", "")
        if accept and "text/event-stream" not in accept and "*/*" not in accept:
            raise HTTPError(406, "Not Acceptable: the SSE endpoint needs Accept: text/event-stream")
        self.session: Session = await sessions.create(self.caller.principal_key, self.transport_name)
        self.write_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[Any]] = set()
        try:
            await self.join(session_group(self.session.id))
            await self.join(BROADCAST_GROUP)
            await self.start_sse()
            root = self.scope.get("root_path", "")
            endpoint = f"{quote(root + mcp_settings.PATH_PREFIX.rstrip('/'))}/messages?session_id={self.session.id}"
            await self.write(sse.encode_event(endpoint, event="endpoint"))
            await self.hold()
        finally:
            for task in list(self.tasks):
                task.cancel()
            await sessions.delete(self.session.id)
            await self.finish_response()

    async def hold(self) -> None:
        async def keep_alive() -> bool:
            await self.write(sse.encode_comment("keep-alive"))
            # Keep the session alive while its stream is open (get() refreshes its expiry).
            fresh = await sessions.get(self.session.id)
            if fresh is None:
                return False
            self.session = fresh
            return True

        await self.hold_open(keep_alive)

    async def send_message(self, message: dict[str, Any]) -> None:
        async with self.write_lock:
            await self.write(sse.encode_event(jsonutil.dumps_str(message), event="message"))

    async def on_stream_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "mcp.sse.post":
            await self.client_message(message["message"])
        elif kind == "mcp.list_changed":
            await self.send_message({"jsonrpc": "2.0", "method": f"notifications/{message['kind']}/list_changed"})
        elif kind == "mcp.resource_updated":
            current = await sessions.get(self.session.id)
            if current is not None and message.get("uri") in current.subscriptions:
                await self.send_message(
                    {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": message["uri"]}}
                )
        elif kind == "mcp.session.message":
            await self.send_message(message["message"])
        elif revokes(message, self.caller.token_id):
            self.end_stream()  # its next POST would be refused anyway

    async def client_message(self, raw: Any) -> None:
        message = parse_message(raw)  # validated by the POST already
        if isinstance(message, Response):
            token = token_of_server_request(message.id)
            if token:
                self.deliver_reply(token, {"id": message.id, "result": message.result, "error": message.error})
            return
        if isinstance(message, Notification):
            if message.method == "notifications/cancelled":
                request_id = message.params.get("requestId")
                if isinstance(request_id, str | int):
                    self.cancel_inflight(request_token(request_id), str(message.params.get("reason") or ""))
                return
            await dispatcher.handle_notification(message, self.exchange_for(None))
            return
        assert isinstance(message, Request)
        if message.method in CONCURRENT_METHODS:
            task = asyncio.ensure_future(self.serve_request(message, own_task=True))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            await self.serve_request(message)

    def exchange_for(self, request: Request | None) -> Exchange:
        info = self.request_info(request, self.session)
        return Exchange(caller=self.caller, info=info, session=self.session, emit=self.send_message)

    async def serve_request(self, request: Request, *, own_task: bool = False) -> None:
        if request.method != "initialize" and request.method != "ping":
            # Pick up changes made through other workers (log level, subscriptions).
            fresh = await sessions.get(self.session.id)
            if fresh is not None:
                self.session = fresh
        exchange = self.exchange_for(request)
        response = await self.run_request(request, exchange, in_current_task=own_task)
        if exchange.session is not None:
            self.session = exchange.session
        if response is not None:
            await self.send_message(response)


class SSEMessagesConsumer(MCPConsumer):
    transport_name = "sse"

    async def serve(self) -> None:
        if self.method != "POST":
            raise HTTPError(405, f"Method {self.method} not allowed", headers=[(b"allow", b"POST")])
        self.check_host_and_origin()
        caller = await self.authenticate()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        session_id = (query.get("session_id") or [""])[0].strip()
        if not session_id:
            raise HTTPError(400, "Bad Request: missing session_id query parameter")
        session = await sessions.get(session_id)
        if session is None or session.principal != caller.principal_key or session.transport != "sse":
            raise HTTPError(404, "Session not found: open a new stream at the SSE endpoint")
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json":
            raise HTTPError(415, "Unsupported Media Type: Content-Type must be application/json")
        body = await self.read_body()
        try:
            raw = jsonutil.loads(body)
        except jsonutil.JSONDecodeError as exc:
            raise HTTPError(400, f"Parse error: {exc}", code=PARSE_ERROR) from None
        if isinstance(raw, list):
            raise HTTPError(400, "Invalid Request: batches are not supported on this transport", code=INVALID_REQUEST)
        try:
            message = parse_message(raw)
        except MCPError as exc:
            rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str | int) else None
            raise HTTPError(400, exc.message, code=exc.code, request_id=rid) from None
        if isinstance(message, Request) and message.method in ("tools/call", "resources/read", "prompts/get"):
            await self.enforce_rate_limit(caller, message.id)
        if self.channel_layer is None:
            raise HTTPError(503, "No channel layer configured (CHANNEL_LAYERS)", code=-32603)
        await self.channel_layer.group_send(session_group(session.id), {"type": "mcp.sse.post", "message": raw})
        await self.send_response(202, b"Accepted", content_type=b"text/plain; charset=utf-8")

