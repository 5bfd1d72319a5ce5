"""Streamable HTTP at ``<prefix>`` (POST, GET, DELETE): the stateful revisions 2025-03-26,
2025-06-18 and 2025-11-25, and the stateless 2026-07-28 revision, told apart per request."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from ..conf import mcp_settings
from ..context import Caller
from ..protocol import jsonutil, sse, versions
from ..protocol.errors import INVALID_REQUEST, PARSE_ERROR, MCPError, echo
from ..protocol.jsonrpc import Message, Notification, Request, Response, error_message, parse_message
from ..server.eras import RequestFacts
from ..server.events import parse_event_id
from ..server.exchange import Port
from ..server.leases import Lease, is_alive, worker_lost_error
from ..server.routing import (
    BROADCAST_GROUP,
    get_stream_lease,
    session_group,
    stream_group,
    stream_producer_lease,
)
from ..server.session import Session
from .base import HTTPError, MCPConsumer
from .stateless import serve_stateless
from .status import OK, retry_after_headers, status_of_response
from .streams import EventLog, SessionStream, Stream

ALLOW = [(b"allow", b"GET, POST, DELETE")]
CALL_METHODS = ("tools/call", "resources/read", "prompts/get")
logger = logging.getLogger("mcp_sse")

LOST_PRODUCER_MESSAGE = "The worker serving this request stopped before answering it: send the request again"


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

    While it produces a stream, this worker holds the stream's lease (:mod:`~mcp_sse.server.leases`):
    a client resuming on another worker is told the request failed once the lease expires
    without the final response (this worker was killed), instead of waiting for ever.
    """

    def __init__(self, consumer: StreamableHTTPConsumer, session: Session, request_ids: list[Any]):
        self.consumer = consumer
        self.session = session
        self.request_ids = request_ids
        self.log: EventLog | None = None  # made when the response turns into a stream
        self.lease: Lease | None = None
        self.detached = False
        self.lock = asyncio.Lock()
        self.close_timer: asyncio.TimerHandle | None = None

    @property
    def version(self) -> str:
        return self.session.protocol_version

    async def emit(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if self.log is None:
                await self._begin(message)
            else:
                await self._push(self.log, message)

    async def _begin(self, first: dict[str, Any] | None = None) -> EventLog:
        """Turn the response into a stream: the priming event (2025-11-25+) and ``first``, the
        message that caused it, stored in one write, then sent."""
        log = self.log = EventLog(self.consumer.server.events, self.session.id, secrets.token_urlsafe(9))
        self.consumer.watch_disconnect_in_background()  # only streams care whether the client left
        await self.consumer.start_sse()
        priming = versions.at_least(self.version, versions.V2025_11_25)
        stored: list[dict[str, Any] | None] = [None] if priming else []
        if first is not None:
            stored.append(first)
        # The lease first, then the events (one pipelined round trip): whoever can resume the
        # stream finds its producer alive.
        self.lease = Lease(stream_producer_lease(self.session.id, log.stream_id))
        _, event_ids = await asyncio.gather(self.lease.acquire(), log.append_many(stored, request_ids=self.request_ids))
        if priming:
            await self.consumer.write_event(None, event_id=event_ids[0], retry_ms=mcp_settings.SSE_RETRY_MS)
        limit = mcp_settings.POST_STREAM_MAX_SECONDS
        if limit:
            loop = asyncio.get_running_loop()
            self.close_timer = loop.call_later(float(limit), lambda: asyncio.ensure_future(self.close_for_polling()))
        if first is not None:
            await self._send(log, first, event_ids[-1])
        return log

    async def _push(self, log: EventLog, message: dict[str, Any] | None, *, final: bool = False) -> None:
        await self._send(log, message, await log.append(message, final=final), final=final)

    async def _send(self, log: EventLog, message: dict[str, Any] | None, event_id: str, *, final: bool = False) -> None:
        """Write a stored event to the client, or once it has gone, to whoever resumed the stream."""
        if not self.detached and await self.consumer.write_event(message, event_id=event_id):
            return
        self.detached = True
        layer = self.consumer.channel_layer
        if layer is not None:
            await layer.group_send(
                stream_group(self.session.id, log.stream_id),
                {"type": "mcp.stream.event", "seq": log.seq, "message": message, "final": final},
            )

    async def close_for_polling(self) -> None:
        """Drop the connection (not the stream): the client polls with Last-Event-ID.

        Only from 2025-11-25 on, whose clients know to reconnect after a priming event."""
        if not versions.at_least(self.version, versions.V2025_11_25):
            return
        async with self.lock:
            if self.detached or self.consumer.response_finished:
                return
            if self.log is None:
                await self._begin()
            await self.consumer.write(sse.encode_event(None, retry_ms=mcp_settings.SSE_RETRY_MS))
            self.detached = True
            await self.consumer.finish_response()

    async def finish(self, responses: list[dict[str, Any]], batch: bool) -> None:
        async with self.lock:
            if self.close_timer is not None:
                self.close_timer.cancel()
            log = self.log
            if log is None:
                if not responses:
                    await self.consumer.start_sse()  # cancelled: end quietly
                    await self.consumer.finish_response()
                    return
                body = jsonutil.dumps(responses if batch else responses[0])
                status = OK if batch else status_of_response(responses[0], stateless=False)
                await self.consumer.send_response(status, body, retry_after_headers(status))
                return
            for index, response in enumerate(responses):
                await self._push(log, response, final=index == len(responses) - 1)
            if not responses:
                await log.finish()
            await self.consumer.finish_response()

    async def on_drain(self) -> None:
        """This worker is stopping: a 2025-11-25 client is sent to poll (it resumes on another
        worker, which hears the rest through the channel layer); older ones keep the connection
        until the response (or the error of a call cut off at the end of the drain)."""
        await self.close_for_polling()

    async def release(self) -> None:
        """The stream is complete (or its producer failed): let go of its lease."""
        if self.lease is not None:
            await self.lease.release()
            self.lease = None


class StandaloneStream(SessionStream):
    """The session's GET stream for server-initiated messages (one at a time: 409 otherwise)."""

    consumer: StreamableHTTPConsumer

    def __init__(
        self, consumer: StreamableHTTPConsumer, session: Session, caller: Caller, stream_id: str | None, after: int
    ) -> None:
        super().__init__(consumer, session.id, caller)
        self.session = session
        self.resumed = stream_id is not None
        self.log = EventLog(consumer.server.events, session.id, stream_id or "g" + secrets.token_urlsafe(8), after)
        # One GET stream per session, held as a lease: a killed worker's stream stops counting
        # within LEASE_SECONDS, so the client can open a new one elsewhere.
        self.lease = Lease(get_stream_lease(session.id))
        self.held = False

    async def open(self) -> bool:
        if not await self.lease.acquire(exclusive=True):
            raise HTTPError(409, "Conflict: this session already has an open GET stream")
        self.held = True
        await self.consumer.join(session_group(self.session_id))
        await self.consumer.join(BROADCAST_GROUP)
        await self.consumer.start_sse()
        if self.resumed:
            events, _finished = await self.log.stored(self.log.seq)
            await self.log.replay(self.consumer, events)
        elif versions.at_least(self.session.protocol_version, versions.V2025_11_25):
            await self.log.prime(self.consumer)
        return True

    async def push(self, message: dict[str, Any]) -> bool:
        event_id = await self.log.append(message)
        return await self.consumer.write_event(message, event_id=event_id)

    async def close(self) -> None:
        if self.held:
            await self.lease.release()


class ResumedPostStream(Stream):
    """A POST's response stream picked up again with ``Last-Event-ID``: the stored events after
    that id, then live ones (``mcp.stream.event``) until its final response.

    The worker producing it may have died (``kill -9``, a lost machine): its lease is checked
    every third of ``LEASE_SECONDS``, and once it has expired without a final response the
    stream's requests are answered with an error (stored too, for later resumes) and it ends.
    """

    def __init__(self, consumer: StreamableHTTPConsumer, session: Session, stream_id: str, after: int) -> None:
        super().__init__(consumer)
        self.log = EventLog(consumer.server.events, session.id, stream_id, after)
        self.watcher: asyncio.Task[None] | None = None

    async def open(self) -> bool:
        log = self.log
        # Join before reading the store: an event sent in between is then in the inbox.
        await self.consumer.join(stream_group(log.session_id, log.stream_id))
        events, finished = await log.stored(log.seq)
        if not events and not finished and not await log.exists():
            raise HTTPError(404, "Stream not found: nothing to resume for that Last-Event-ID")
        await self.consumer.start_sse()
        await log.replay(self.consumer, events)
        if finished:
            return False
        self.watcher = asyncio.ensure_future(self.watch_producer())
        return True

    async def watch_producer(self) -> None:
        name = stream_producer_lease(self.log.session_id, self.log.stream_id)
        interval = float(mcp_settings.LEASE_SECONDS) / 3
        while True:
            try:
                if not await is_alive(name):
                    self.offer({"type": "mcp.producer.lost"})
                    return
            except Exception:  # the store is unreachable: no verdict, look again later
                logger.warning("mcp_sse: could not check the producer of a resumed stream", exc_info=True)
            await asyncio.sleep(interval)

    async def mcp_producer_lost(self, message: dict[str, Any]) -> bool:
        """The producer's lease expired: whatever it stored last, then the verdict."""
        log = self.log
        events, finished = await log.stored(log.seq)
        await log.replay(self.consumer, events)
        if finished:  # it finished after all (the lease went with the final response)
            return False
        error = worker_lost_error(LOST_PRODUCER_MESSAGE)
        answers: list[dict[str, Any] | None] = [
            error_message(request_id, error) for request_id in await log.request_ids()
        ]
        if not answers:  # a stream stored without its requests' ids: still say it failed
            answers = [error_message(None, error)]
        event_ids = await log.append_many(answers, final=True)
        for answer, event_id in zip(answers, event_ids, strict=True):
            await self.consumer.write_event(answer, event_id=event_id)
        return False

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()

    async def mcp_stream_event(self, message: dict[str, Any]) -> bool | None:
        seq = message["seq"]
        if seq <= self.log.seq:
            return None  # already replayed from the store
        self.log.seq = seq
        if message["message"] is not None:
            await self.consumer.write_event(message["message"], event_id=f"{self.log.stream_id}.{seq}")
        return False if message.get("final") else None


class StreamableHTTPConsumer(MCPConsumer):
    transport_name = "streamable-http"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.session: Session | None = None
        await super().__call__(scope, receive, send)

    async def serve(self) -> None:
        method = self.method
        if method not in ("POST", "GET", "DELETE"):
            raise HTTPError(405, f"Method {method} not allowed", headers=ALLOW)
        self.check_host_and_origin()
        await getattr(self, method.lower())()  # post(), get() or delete()

    # -- channel layer: the client's replies and cancellations routed from other workers ----
    async def mcp_client_reply(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            self.server.requests.layer_reply(self.session.id, message)

    async def mcp_client_cancel(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            self.server.requests.layer_cancel(self.session.id, message)

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
        if any(isinstance(m, Request) for m in messages):
            self.refuse_while_draining(first.id if isinstance(first, Request) else None)
        era = self.server.era_for(
            first,
            batch=batch,
            session_header=self.headers.get("mcp-session-id", ""),
            version_header=self.headers.get("mcp-protocol-version", ""),
        )
        if era.stateless:
            assert isinstance(first, Request | Notification)
            await serve_stateless(self, caller, first)
            return
        await self.post_stateful(caller, messages, batch)

    async def load_session(self, caller: Caller) -> Session:
        session_id = self.headers.get("mcp-session-id", "").strip()
        if not session_id:
            raise HTTPError(400, "Bad Request: missing Mcp-Session-Id header (initialize first)")
        session = await self.server.sessions.get(session_id)
        # Another principal's session is reported exactly like an unknown one.
        if session is None or session.principal != caller.principal_key or session.transport != self.transport_name:
            raise HTTPError(404, "Session not found (expired or ended): initialize a new session")
        header_version = self.headers.get("mcp-protocol-version", "").strip()
        if header_version and header_version not in versions.HANDSHAKE_VERSIONS:
            raise HTTPError(
                400,
                f"Bad Request: unsupported MCP-Protocol-Version {echo(header_version, quoted=True)}",
                data={"supported": list(versions.HANDSHAKE_VERSIONS), "requested": echo(header_version)},
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
            await self.server.requests.client_message(session.id, message)
        elif isinstance(message, Notification):
            await self.server.stateful.notification(
                message,
                caller,
                session,
                self.transport_name,
                remote_addr=self.remote_addr,
                remote_port=self.remote_port,
                http_version=self.http_version,
            )

    def facts(self, caller: Caller, request: Request, session: Session | None) -> RequestFacts:
        return RequestFacts(
            request,
            caller,
            self.transport_name,
            self.remote_addr,
            session.id if session else None,
            remote_port=self.remote_port,
            http_version=self.http_version,
        )

    async def serve_initialize(self, caller: Caller, request: Request) -> None:
        era = self.server.stateful
        exchange = era.exchange(self.facts(caller, request, None), None)
        response = await self.server.requests.serve(era, request, exchange, in_current_task=True)
        assert response is not None  # nobody can cancel an initialize: it has no session yet
        status = status_of_response(response, stateless=False)
        headers = retry_after_headers(status)
        if exchange.new_session is not None:
            headers.append((b"mcp-session-id", exchange.new_session.id.encode()))
        await self.send_response(status, jsonutil.dumps(response), headers)

    async def serve_requests(self, caller: Caller, session: Session, requests: list[Request], batch: bool) -> None:
        stream = PostStream(self, session, [r.id for r in requests])
        port = Port(emit=stream.emit, close_stream=stream.close_for_polling, join=self.join, leave=self.leave)
        era = self.server.stateful
        lifecycle = self.server.requests

        async def run_all() -> None:
            exchanges = [era.exchange(self.facts(caller, r, session), session, port) for r in requests]
            try:
                if len(requests) == 1:
                    results = [await lifecycle.serve(era, requests[0], exchanges[0], in_current_task=True)]
                else:
                    results = list(
                        await asyncio.gather(
                            *(lifecycle.serve(era, r, x) for r, x in zip(requests, exchanges, strict=True))
                        )
                    )
                await stream.finish([r for r in results if r is not None], batch)
            finally:
                await stream.release()

        # The work outlives this coroutine if the client goes away mid-stream (a disconnect is
        # not a cancellation before 2026: its events wait in the store for a resuming GET), so
        # it is a task of its own that Daphne cancelling us cannot reach.
        stop_listening = lifecycle.on_drain(stream.on_drain)
        work = lifecycle.keep_running(asyncio.ensure_future(run_all()))
        work.add_done_callback(lambda _work: stop_listening())
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
        self.refuse_while_draining()
        session = await self.load_session(caller)
        self.session = session
        last_event_id = self.headers.get("last-event-id", "").strip()
        if not last_event_id:
            await StandaloneStream(self, session, caller, None, 0).run()
            return
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            raise HTTPError(400, f"Bad Request: malformed Last-Event-ID {echo(last_event_id, quoted=True)}")
        stream_id, seq = parsed
        if stream_id.startswith("g"):
            await StandaloneStream(self, session, caller, stream_id, seq).run()
        else:
            await ResumedPostStream(self, session, stream_id, seq).run()

    # -- DELETE -------------------------------------------------------------------------
    async def delete(self) -> None:
        caller = await self.authenticate()
        if not self.headers.get("mcp-session-id"):
            if self.headers.get("mcp-protocol-version") in versions.MODERN_VERSIONS:
                raise HTTPError(405, "Method Not Allowed: 2026-07-28 has no sessions", headers=ALLOW)
            raise HTTPError(400, "Bad Request: missing Mcp-Session-Id header")
        session = await self.load_session(caller)
        await self.server.sessions.end(session)
        if self.channel_layer is not None:
            await self.channel_layer.group_send(session_group(session.id), {"type": "mcp.session.closed"})
        await self.send_response(200, b"")
