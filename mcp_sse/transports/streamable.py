"""Streamable HTTP at ``<prefix>`` (POST, GET, DELETE): the stateful revisions 2025-03-26,
2025-06-18 and 2025-11-25, and the stateless 2026-07-28 revision, told apart per request."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from django.core.cache import caches

from ..conf import mcp_settings
from ..context import Caller
from ..notify import revokes
from ..protocol import jsonutil, sse, versions
from ..protocol.errors import INVALID_REQUEST, PARSE_ERROR, MCPError
from ..protocol.jsonrpc import Message, Notification, Request, Response, parse_message
from ..server.events import event_store, parse_event_id
from ..server.exchange import Exchange
from ..server.routing import BROADCAST_GROUP, route_client_message, session_group, stream_group
from ..server.session import Session, sessions
from .base import HTTPError, keep_running
from .serving import RequestServingConsumer, dispatcher

ALLOW = [(b"allow", b"GET, POST, DELETE")]
CALL_METHODS = ("tools/call", "resources/read", "prompts/get")


def _accepts(accept: str, media_type: str) -> bool:
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    major = media_type.split("/")[0]
    return media_type in kinds or f"{major}/*" in kinds or "*/*" in kinds


def parse_body(body: bytes) -> tuple[list[Message], bool]:
    """Messages of a POST body and whether it was a batch; HTTP 400 on anything malformed."""
    try:
        payload = jsonutil.loads(body)
    except jsonutil.JSONDecodeError as exc:
        raise HTTPError(400, f"Parse error: {exc}", code=PARSE_ERROR) from None
    items = payload if isinstance(payload, list) else [payload]
    if isinstance(payload, list) and not payload:
        raise HTTPError(400, "Invalid Request: empty batch", code=INVALID_REQUEST)
    messages: list[Message] = []
    for item in items:
        try:
            messages.append(parse_message(item))
        except MCPError as exc:
            rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str | int) else None
            raise HTTPError(400, exc.message, code=exc.code, request_id=rid) from None
    return messages, isinstance(payload, list)


class PostStream:
    """The response to one POST: JSON if nothing is emitted before the result, otherwise SSE.

    On SSE, every event gets an id ``<stream>.<seq>`` and is kept in the shared event store, so
    a client whose connection drops (or that we ask to poll) resumes on any worker with
    ``GET`` + ``Last-Event-ID``. Once the connection is gone the events go to the store and the
    stream's group only (a disconnect is not a cancellation before 2026).
    """

    def __init__(self, consumer: StreamableHTTPConsumer, session: Session):
        self.consumer = consumer
        self.session = session
        self.stream_id = ""  # minted when the response turns into a stream
        self.seq = 0
        self.sse = False
        self.detached = False
        self.lock = asyncio.Lock()
        self.close_timer: asyncio.TimerHandle | None = None

    @property
    def version(self) -> str:
        return self.session.protocol_version

    async def emit(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if not self.sse:
                await self._begin()
            await self._push(message)

    async def _begin(self) -> None:
        self.sse = True
        self.stream_id = secrets.token_urlsafe(9)
        self.consumer.watch_disconnect_in_background()  # only streams care whether the client left
        await self.consumer.start_sse()
        if versions.at_least(self.version, versions.V2025_11_25):
            # Priming event: an id and empty data, so the client can resume from the start.
            self.seq += 1
            event_id = f"{self.stream_id}.{self.seq}"
            await event_store.append(self.session.id, self.stream_id, self.seq, None)
            await self.consumer.write_event(None, event_id=event_id, retry_ms=mcp_settings.SSE_RETRY_MS)
        limit = mcp_settings.POST_STREAM_MAX_SECONDS
        if limit:
            loop = asyncio.get_running_loop()
            self.close_timer = loop.call_later(float(limit), lambda: asyncio.ensure_future(self.close_for_polling()))

    async def _push(self, message: dict[str, Any] | None, *, final: bool = False) -> None:
        self.seq += 1
        event_id = f"{self.stream_id}.{self.seq}"
        await event_store.append(self.session.id, self.stream_id, self.seq, message)
        if final:
            await event_store.mark_finished(self.session.id, self.stream_id, self.seq)
        if not self.detached and await self.consumer.write_event(message, event_id=event_id):
            return
        self.detached = True
        layer = self.consumer.channel_layer
        if layer is not None:
            await layer.group_send(
                stream_group(self.session.id, self.stream_id),
                {"type": "mcp.stream.event", "seq": self.seq, "message": message, "final": final},
            )

    async def close_for_polling(self) -> None:
        """Drop the connection (not the stream): the client polls with Last-Event-ID.

        Only from 2025-11-25 on, whose clients know to reconnect after a priming event."""
        if not versions.at_least(self.version, versions.V2025_11_25):
            return
        async with self.lock:
            if self.detached or self.consumer.response_finished:
                return
            if not self.sse:
                await self._begin()
            await self.consumer.write(sse.encode_event(None, retry_ms=mcp_settings.SSE_RETRY_MS))
            self.detached = True
            await self.consumer.finish_response()

    async def finish(self, responses: list[dict[str, Any]], batch: bool) -> None:
        async with self.lock:
            if self.close_timer is not None:
                self.close_timer.cancel()
            if not self.sse:
                if not responses:
                    await self.consumer.start_sse()  # cancelled: end quietly
                    await self.consumer.finish_response()
                    return
                body = jsonutil.dumps(responses if batch else responses[0])
                await self.consumer.send_response(200, body)
                return
            for index, response in enumerate(responses):
                await self._push(response, final=index == len(responses) - 1)
            if not responses:
                await event_store.mark_finished(self.session.id, self.stream_id, self.seq)
            await self.consumer.finish_response()


class StreamableHTTPConsumer(RequestServingConsumer):
    transport_name = "streamable-http"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.session: Session | None = None
        self.stream_session_id: str | None = None
        self.stream_caller = Caller()
        await super().__call__(scope, receive, send)

    def session_id_for_routing(self) -> str | None:
        return self.session.id if self.session else None

    async def serve(self) -> None:
        method = self.method
        if method not in ("POST", "GET", "DELETE"):
            raise HTTPError(405, f"Method {method} not allowed", headers=ALLOW)
        self.check_host_and_origin()
        if method == "POST":
            await self.post()
        elif method == "GET":
            await self.get()
        else:
            await self.delete()

    # -- POST ---------------------------------------------------------------------------
    async def post(self) -> None:
        caller = await self.authenticate()
        accept = self.headers.get("accept", "")
        if not (_accepts(accept, "application/json") and _accepts(accept, "text/event-stream")):
            raise HTTPError(406, "Not Acceptable: the client must accept both application/json and text/event-stream")
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, "Unsupported Media Type: Content-Type must be application/json")
        body = await self.read_body()
        messages, batch = parse_body(body)
        first = messages[0]
        # 2026-07-28 requests carry their version in _meta; one lacking _meta is still modern when
        # it names a modern MCP-Protocol-Version outside any session (it then fails validation).
        if (
            isinstance(first, Request | Notification)
            and not batch
            and (
                versions.is_modern_request(first.params)
                or (
                    first.method != "initialize"
                    and not self.headers.get("mcp-session-id")
                    and self.headers.get("mcp-protocol-version", "").strip() in versions.MODERN_VERSIONS
                )
            )
        ):
            from .stateless import serve_stateless

            await serve_stateless(self, caller, first)
            return
        await self.post_stateful(caller, messages, batch)

    async def load_session(self, caller: Caller) -> Session:
        session_id = self.headers.get("mcp-session-id", "").strip()
        if not session_id:
            raise HTTPError(400, "Bad Request: missing Mcp-Session-Id header (initialize first)")
        session = await sessions.get(session_id)
        # Another principal's session is reported exactly like an unknown one.
        if session is None or session.principal != caller.principal_key or session.transport != self.transport_name:
            raise HTTPError(404, "Session not found (expired or ended): initialize a new session")
        header_version = self.headers.get("mcp-protocol-version", "").strip()
        if header_version and header_version not in versions.HANDSHAKE_VERSIONS:
            raise HTTPError(
                400,
                f"Bad Request: unsupported MCP-Protocol-Version {header_version!r}",
                data={"supported": list(versions.HANDSHAKE_VERSIONS), "requested": header_version},
            )
        return session

    async def post_stateful(self, caller: Caller, messages: list[Message], batch: bool) -> None:
        initialize = [m for m in messages if isinstance(m, Request) and m.method == "initialize"]
        if initialize and (batch or len(messages) > 1):
            raise HTTPError(400, "Invalid Request: initialize must not be part of a batch")
        session: Session | None = None
        if not initialize:
            session = await self.load_session(caller)
            if batch and session.protocol_version != versions.V2025_03_26:
                raise HTTPError(400, f"Invalid Request: batches are not allowed in {session.protocol_version}")
        self.session = session
        requests = [m for m in messages if isinstance(m, Request)]
        if any(r.method in CALL_METHODS for r in requests):
            await self.enforce_rate_limit(caller)
        for message in messages:
            if not isinstance(message, Request) and session is not None:
                await self.client_message(caller, session, message)
        if not requests:
            await self.send_response(202, b"")
            return
        if initialize:
            await self.serve_initialize(caller, initialize[0])
            return
        assert session is not None
        await self.serve_requests(caller, session, requests, batch)

    async def client_message(self, caller: Caller, session: Session, message: Message) -> None:
        if isinstance(message, Response) or (
            isinstance(message, Notification) and message.method == "notifications/cancelled"
        ):
            await route_client_message(session.id, message)
        elif isinstance(message, Notification):
            await dispatcher.handle_notification(message, self.exchange_for(caller, session, None))

    def exchange_for(
        self, caller: Caller, session: Session | None, request: Request | None, stream: PostStream | None = None
    ) -> Exchange:
        info = self.request_info(request, session)
        return Exchange(
            caller=caller,
            info=info,
            session=session,
            emit=stream.emit if stream else None,
            close_stream=stream.close_for_polling if stream else None,
        )

    async def serve_initialize(self, caller: Caller, request: Request) -> None:
        exchange = self.exchange_for(caller, None, request)
        response = await dispatcher.handle(request, exchange)
        headers = []
        if exchange.new_session is not None:
            headers.append((b"mcp-session-id", exchange.new_session.id.encode()))
        await self.send_response(200, jsonutil.dumps(response), headers)

    async def serve_requests(self, caller: Caller, session: Session, requests: list[Request], batch: bool) -> None:
        stream = PostStream(self, session)

        async def run_all() -> None:
            if len(requests) == 1:
                exchange = self.exchange_for(caller, session, requests[0], stream)
                results = [await self.run_request(requests[0], exchange, in_current_task=True)]
            else:
                results = list(
                    await asyncio.gather(
                        *(self.run_request(r, self.exchange_for(caller, session, r, stream)) for r in requests)
                    )
                )
            await stream.finish([r for r in results if r is not None], batch)

        # The work outlives this coroutine if the client goes away mid-stream (a disconnect is
        # not a cancellation before 2026: its events wait in the store for a resuming GET), so
        # it is a task of its own that Daphne cancelling us cannot reach.
        work = keep_running(asyncio.ensure_future(run_all()))
        self.outliving_work = work
        try:
            await asyncio.shield(work)
        finally:
            self.stop_disconnect_watch()

    # -- GET ----------------------------------------------------------------------------
    async def get(self) -> None:
        caller = await self.authenticate()
        # 2026 has no GET at all: that answer comes before any Accept negotiation.
        if (
            not self.headers.get("mcp-session-id")
            and self.headers.get("mcp-protocol-version") in versions.MODERN_VERSIONS
        ):
            raise HTTPError(405, "Method Not Allowed: 2026-07-28 has no GET stream", headers=ALLOW)
        if not _accepts(self.headers.get("accept", ""), "text/event-stream"):
            raise HTTPError(406, "Not Acceptable: GET needs Accept: text/event-stream")
        session = await self.load_session(caller)
        self.session = session
        self.stream_caller = caller
        last_event_id = self.headers.get("last-event-id", "").strip()
        if last_event_id:
            await self.resume(session, last_event_id)
        else:
            await self.standalone(session)

    async def resume(self, session: Session, last_event_id: str) -> None:
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            raise HTTPError(400, f"Bad Request: malformed Last-Event-ID {last_event_id!r}")
        stream_id, seq = parsed
        if stream_id.startswith("g"):
            await self.standalone(session, stream_id=stream_id, after=seq)
            return
        await self.join(stream_group(session.id, stream_id))
        events, finished = await event_store.after(session.id, stream_id, seq)
        if not events and not finished and not await event_store.exists(session.id, stream_id):
            raise HTTPError(404, "Stream not found: nothing to resume for that Last-Event-ID")
        self.resume_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.resume_stream = stream_id
        await self.start_sse()
        last = seq
        for number, message in events:
            if message is not None:
                await self.write_event(message, event_id=f"{stream_id}.{number}")
            last = number
        if finished:
            await self.finish_response()
            return
        watcher = asyncio.ensure_future(self.watch_disconnect())
        try:
            while not self.disconnected.is_set():
                getter = asyncio.ensure_future(self.resume_queue.get())
                done, _ = await asyncio.wait(
                    {getter, watcher}, timeout=mcp_settings.KEEPALIVE_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if watcher in done:
                        return
                    await self.write(sse.encode_comment("keep-alive"))
                    continue
                event = getter.result()
                if event["seq"] <= last:
                    continue
                last = event["seq"]
                if event["message"] is not None:
                    await self.write_event(event["message"], event_id=f"{stream_id}.{last}")
                if event.get("final"):
                    break
        finally:
            watcher.cancel()
        await self.finish_response()

    async def standalone(self, session: Session, stream_id: str | None = None, after: int = 0) -> None:
        """The session's stream for server-initiated messages (one at a time: 409 otherwise)."""
        cache = caches[mcp_settings.CACHE_ALIAS]
        marker = f"mcp_sse:get-stream:{session.id}"
        marker_ttl = max(30, int(mcp_settings.KEEPALIVE_INTERVAL * 3))
        if not await cache.aadd(marker, 1, marker_ttl):
            raise HTTPError(409, "Conflict: this session already has an open GET stream")
        try:
            self.get_stream_id = stream_id or "g" + secrets.token_urlsafe(8)
            self.get_seq = after
            self.stream_session_id = session.id
            await self.join(session_group(session.id))
            await self.join(BROADCAST_GROUP)
            await self.start_sse()
            if stream_id is not None:
                events, _ = await event_store.after(session.id, stream_id, after)
                for number, message in events:
                    if message is not None:
                        await self.write_event(message, event_id=f"{stream_id}.{number}")
                    self.get_seq = number
            elif versions.at_least(session.protocol_version, versions.V2025_11_25):
                await self.push_get(None)

            async def keep_alive() -> None:
                await self.write(sse.encode_comment("keep-alive"))
                await cache.atouch(marker, marker_ttl)

            await self.hold_open(keep_alive)
        finally:
            await cache.adelete(marker)
        await self.finish_response()

    async def push_get(self, message: dict[str, Any] | None) -> None:
        assert self.session is not None
        self.get_seq += 1
        await event_store.append(self.session.id, self.get_stream_id, self.get_seq, message)
        await self.write_event(
            message,
            event_id=f"{self.get_stream_id}.{self.get_seq}",
            retry_ms=mcp_settings.SSE_RETRY_MS if message is None else None,
        )

    async def on_stream_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "mcp.stream.event":
            queue = getattr(self, "resume_queue", None)
            if queue is not None:
                queue.put_nowait(message)
            return
        if self.stream_session_id is None or self.session is None:
            return
        if kind == "mcp.list_changed":
            await self.push_get({"jsonrpc": "2.0", "method": f"notifications/{message['kind']}/list_changed"})
        elif kind == "mcp.resource_updated":
            current = await sessions.get(self.session.id)
            if current is not None and message.get("uri") in current.subscriptions:
                await self.push_get(
                    {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": message["uri"]}}
                )
        elif kind == "mcp.session.message":
            await self.push_get(message["message"])
        elif kind == "mcp.session.closed":
            self.end_stream()
        elif revokes(message, self.stream_caller.token_id):
            self.end_stream()

    # -- DELETE -------------------------------------------------------------------------
    async def delete(self) -> None:
        caller = await self.authenticate()
        if not self.headers.get("mcp-session-id"):
            if self.headers.get("mcp-protocol-version") in versions.MODERN_VERSIONS:
                raise HTTPError(405, "Method Not Allowed: 2026-07-28 has no sessions", headers=ALLOW)
            raise HTTPError(400, "Bad Request: missing Mcp-Session-Id header")
        session = await self.load_session(caller)
        await sessions.delete(session.id)
        if self.channel_layer is not None:
            await self.channel_layer.group_send(session_group(session.id), {"type": "mcp.session.closed"})
        await self.send_response(200, b"")
