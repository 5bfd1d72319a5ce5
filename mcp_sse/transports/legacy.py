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
from ..context import Caller
from ..protocol import jsonutil, sse
from ..protocol.errors import INVALID_REQUEST, PARSE_ERROR, MCPError
from ..protocol.jsonrpc import Notification, Request, Response, error_message, parse_message
from ..server.eras import RequestFacts
from ..server.exchange import Port, cut_short_error
from ..server.leases import Lease, is_alive
from ..server.routing import BROADCAST_GROUP, session_group, session_stream_lease
from ..server.session import Session
from .base import HTTPError, MCPConsumer
from .streams import SessionStream

# Served in the background so that a long tool call never holds up the stream; everything
# else is answered in arrival order.
CONCURRENT_METHODS = ("tools/call", "resources/read", "prompts/get", "completion/complete")
DRAINING_MESSAGE = "The server is shutting down and takes no new requests: reconnect and send it again"


class LegacyStream(SessionStream):
    """The ``/sse`` stream: the ``endpoint`` event, then every message of the session.

    Its worker holds the session's stream lease while it is open: a POST for the session on any
    worker checks it, so once this worker is gone (killed) the client gets 404 and reconnects
    instead of 202 for a message nobody will read.
    """

    consumer: SSEStreamConsumer

    def __init__(self, consumer: SSEStreamConsumer, session_id: str, caller: Caller) -> None:
        super().__init__(consumer, session_id, caller)
        self.lease = Lease(session_stream_lease(session_id))
        self.drained: asyncio.Task[None] | None = None

    async def on_drain(self) -> None:
        # The session's calls run here and answer on this stream: it ends once they have
        # (finished, or cut off at the end of the drain with an error), not before.
        running = set(self.consumer.tasks)
        if not running:
            self.end_soon()
            return

        async def end_after_calls() -> None:
            await asyncio.wait(running)
            self.end_soon()

        self.drained = asyncio.ensure_future(end_after_calls())

    async def farewell(self) -> None:
        """Nothing: this transport has no reconnection hint, its clients open a new stream."""

    async def open(self) -> bool:
        consumer = self.consumer
        await self.lease.acquire()
        await consumer.join(session_group(self.session_id))
        await consumer.join(BROADCAST_GROUP)
        await consumer.start_sse()
        root = consumer.scope.get("root_path", "")
        endpoint = f"{quote(root + mcp_settings.PATH_PREFIX.rstrip('/'))}/messages?session_id={self.session_id}"
        await consumer.write(sse.encode_event(endpoint, event="endpoint"))
        return True

    async def push(self, message: dict[str, Any]) -> bool:
        return await self.consumer.send_message(message)

    async def on_idle(self) -> bool:
        if not await super().on_idle():
            return False
        # Keep the session alive while its stream is open (get() refreshes its expiry).
        fresh = await self.consumer.server.sessions.get(self.session_id)
        if fresh is None:
            return False
        self.consumer.session = fresh
        return True

    async def close(self) -> None:
        if self.drained is not None:
            self.drained.cancel()
        for task in list(self.consumer.tasks):
            task.cancel()
        await self.consumer.server.sessions.end(self.consumer.session)
        await self.lease.release()


class SSEStreamConsumer(MCPConsumer):
    """Holds the legacy stream and serves the session's messages, which the POST endpoint
    forwards here (``mcp.sse.post``) from any worker."""

    transport_name = "sse"

    async def serve(self) -> None:
        if self.method != "GET":
            raise HTTPError(405, f"Method {self.method} not allowed", headers=[(b"allow", b"GET")])
        self.check_host_and_origin()
        self.refuse_while_draining()
        self.caller = await self.authenticate()
        accept = self.headers.get("accept", "")
        if accept and "text/event-stream" not in accept and "*/*" not in accept:
            raise HTTPError(406, "Not Acceptable: the SSE endpoint needs Accept: text/event-stream")
        self.session: Session = await self.server.sessions.create(self.caller.principal_key, self.transport_name)
        self.write_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.port = Port(emit=self.emit)
        await LegacyStream(self, self.session.id, self.caller).run()

    async def send_message(self, message: dict[str, Any]) -> bool:
        async with self.write_lock:
            return await self.write(sse.encode_event(jsonutil.dumps_str(message), event="message"))

    async def emit(self, message: dict[str, Any]) -> None:
        await self.send_message(message)

    async def mcp_sse_post(self, message: dict[str, Any]) -> None:
        """A client message POSTed to ``/messages`` (validated there already)."""
        parsed = parse_message(message["message"])
        if isinstance(parsed, Response) or (
            isinstance(parsed, Notification) and parsed.method == "notifications/cancelled"
        ):
            await self.server.requests.client_message(self.session.id, parsed)
            return
        if isinstance(parsed, Notification):
            await self.server.stateful.notification(
                parsed,
                self.caller,
                self.session,
                self.transport_name,
                remote_addr=self.remote_addr,
                remote_port=self.remote_port,
                http_version=self.http_version,
            )
            return
        assert isinstance(parsed, Request)
        if self.server.requests.draining:
            # Posted (on another worker) before it saw us stop: the stream ends soon, the
            # client reconnects elsewhere and sends it again.
            await self.send_message(error_message(parsed.id, cut_short_error(DRAINING_MESSAGE)))
            return
        if parsed.method in CONCURRENT_METHODS:
            task = asyncio.ensure_future(self.serve_request(parsed, own_task=True))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            await self.serve_request(parsed)

    async def serve_request(self, request: Request, *, own_task: bool = False) -> None:
        # No re-read of the session from the store: every request and notification of a legacy
        # session is served here (POSTs to any worker are forwarded to this consumer), and the
        # handlers change ``self.session`` in place, so it is never behind the store's copy.
        facts = RequestFacts(
            request,
            self.caller,
            self.transport_name,
            self.remote_addr,
            self.session.id,
            remote_port=self.remote_port,
            http_version=self.http_version,
        )
        era = self.server.stateful
        exchange = era.exchange(facts, self.session, self.port)
        response = await self.server.requests.serve(era, request, exchange, in_current_task=own_task)
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
        # Both reads go to the store in one pipelined round trip.
        session, stream_alive = await asyncio.gather(
            self.server.sessions.get(session_id), is_alive(session_stream_lease(session_id))
        )
        if session is None or session.principal != caller.principal_key or session.transport != "sse":
            raise HTTPError(404, "Session not found: open a new stream at the SSE endpoint")
        if not stream_alive:
            # The worker holding the session's stream died without ending it: the session is over.
            await self.server.sessions.delete(session_id)
            raise HTTPError(404, "Session not found: its stream is gone, open a new one at the SSE endpoint")
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
        if isinstance(message, Request):
            self.refuse_while_draining(message.id)
            if message.method in ("tools/call", "resources/read", "prompts/get"):
                await self.enforce_rate_limit(caller, message.id)
        if self.channel_layer is None:
            raise HTTPError(503, "No channel layer configured (CHANNEL_LAYERS)", code=-32603)
        await self.channel_layer.group_send(session_group(session.id), {"type": "mcp.sse.post", "message": raw})
        await self.send_response(202, b"Accepted", content_type=b"text/plain; charset=utf-8")
