"""Stateless Streamable HTTP (2026-07-28): one POST, one self-contained request.

The request's ``_meta`` and headers are validated first (see :mod:`mcp_sse.server.modern`);
then the answer is plain JSON, unless the request emits progress or log messages before its
result, which turns the response into an SSE stream scoped to that request (no event ids, no
resumption, never a server-to-client request). Closing that stream cancels the request.

``subscriptions/listen`` answers with a long-lived SSE stream: an acknowledgement first, then
the list-changed and resource-updated notifications the client opted in to, gathered from the
channel layer's broadcast group so a change made on any worker reaches every listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ..conf import mcp_settings
from ..context import Caller
from ..notify import revokes
from ..protocol import jsonutil, sse
from ..protocol.errors import MCPError
from ..protocol.jsonrpc import Notification, Request, error_message
from ..server import modern
from ..server.routing import BROADCAST_GROUP
from .base import HTTPError
from .serving import dispatcher

if TYPE_CHECKING:
    from .streamable import StreamableHTTPConsumer

logger = logging.getLogger("mcp_sse")

CALL_METHODS = ("tools/call", "resources/read", "prompts/get")


async def serve_stateless(consumer: StreamableHTTPConsumer, caller: Caller, message: Request | Notification) -> None:
    if isinstance(message, Notification):
        # 2026-07-28 defines no client notifications over HTTP; accepted and ignored.
        await consumer.send_response(202, b"")
        return
    request = message
    header_pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in consumer.scope.get("headers", [])]
    try:
        meta, _headers = modern.validate(request, header_pairs, dispatcher)
    except modern.Rejected as exc:
        raise HTTPError(exc.status, exc.message, code=exc.code, request_id=request.id, data=exc.data) from None
    if request.method in CALL_METHODS:
        await consumer.enforce_rate_limit(caller, request.id)
    if request.method == "subscriptions/listen":
        await ListenStream(consumer, caller, request).serve()
        return
    await serve_request(consumer, caller, request, meta)


class RequestStream:
    """The response to one request: JSON unless something is emitted before the result."""

    def __init__(self, consumer: StreamableHTTPConsumer) -> None:
        self.consumer = consumer
        self.sse = False
        self.lock = asyncio.Lock()

    async def emit(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if self.consumer.disconnected.is_set() or self.consumer.response_finished:
                return  # the client cancelled: nothing more may be sent for this request
            if not self.sse:
                self.sse = True
                await self.consumer.start_sse()
            await self.consumer.write_event(message)

    async def finish(self, response: dict[str, Any]) -> None:
        async with self.lock:
            if not self.sse:
                await self.consumer.send_response(modern.http_status(response), jsonutil.dumps(response))
                return
            await self.consumer.write_event(response)
            await self.consumer.finish_response()


async def serve_request(
    consumer: StreamableHTTPConsumer, caller: Caller, request: Request, meta: modern.RequestMeta
) -> None:
    stream = RequestStream(consumer)
    exchange = modern.build_exchange(caller, request, meta, remote_addr=consumer.remote_addr, emit=stream.emit)
    work = asyncio.ensure_future(modern.handle(request, exchange, dispatcher))
    watcher = asyncio.ensure_future(consumer.watch_disconnect())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            # The client closed the stream: that is the cancellation (2026-07-28).
            if exchange.context is not None:
                exchange.context.mark_cancelled()
            work.cancel("the client closed the response stream")
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        response = work.result()
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    await stream.finish(response)


class ListenStream:
    """One ``subscriptions/listen`` response stream."""

    def __init__(self, consumer: StreamableHTTPConsumer, caller: Caller, request: Request) -> None:
        self.consumer = consumer
        self.caller = caller
        self.request = request
        self.subscription_id = request.id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.channel = ""

    async def serve(self) -> None:
        try:
            chosen = await modern.listen_filter(self.request.params, self.caller, dispatcher)
        except MCPError as exc:
            await self.consumer.send_response(200, jsonutil.dumps(error_message(self.request.id, exc.to_error())))
            return
        layer = self.consumer.channel_layer
        pump: asyncio.Task[None] | None = None
        if layer is not None:
            # Join before acknowledging: nothing broadcast after the ack can be missed.
            self.channel = await layer.new_channel()
            await layer.group_add(BROADCAST_GROUP, self.channel)
            pump = asyncio.ensure_future(self._pump(layer))
        watcher = asyncio.ensure_future(self.consumer.watch_disconnect())
        try:
            await self.consumer.start_sse()
            await self.consumer.write_event(modern.acknowledgement(chosen, self.subscription_id))
            await self._deliver(chosen, watcher, pump, layer)
        except asyncio.CancelledError:
            # Server shutdown: end the subscription with its final response if we still can.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._close_gracefully()), 1.0)
            raise
        finally:
            watcher.cancel()
            if pump is not None:
                pump.cancel()
            if layer is not None and self.channel:
                with contextlib.suppress(Exception):
                    await layer.group_discard(BROADCAST_GROUP, self.channel)
            # Without the final response this is an abrupt end: the client re-listens and refetches.
            with contextlib.suppress(Exception):
                await self.consumer.finish_response()

    async def _pump(self, layer: Any) -> None:
        """Our own channel's messages into the queue (receive() is never cancelled mid-read)."""
        while True:
            message = await layer.receive(self.channel)
            try:
                self.queue.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("mcp_sse: listen stream %r is not keeping up; dropping a notification", self.channel)

    async def _deliver(
        self, chosen: modern.ListenFilter, watcher: asyncio.Future[None], pump: asyncio.Future[None] | None, layer: Any
    ) -> None:
        ends = {watcher} if pump is None else {watcher, pump}
        while True:
            getter: asyncio.Future[Any] = asyncio.ensure_future(self.queue.get())
            done, _ = await asyncio.wait(
                {getter, *ends}, timeout=mcp_settings.KEEPALIVE_INTERVAL, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                if pump is not None and pump in done:
                    # The channel layer failed: end the stream (the client re-listens and refetches)
                    # rather than keep it open while it can no longer hear anything.
                    logger.error("mcp_sse: listen stream lost its channel layer: %r", pump.exception())
                    return
                if watcher in done or self.consumer.disconnected.is_set():
                    return
                if not await self.consumer.write(sse.encode_comment("keep-alive")):
                    return
                if layer is not None:
                    # Group membership expires on some layers: renew it while we listen.
                    await layer.group_add(BROADCAST_GROUP, self.channel)
                continue
            message = getter.result()
            if message.get("type") == modern.LISTEN_END or revokes(message, self.caller.token_id):
                await self._close_gracefully()
                return
            notification = modern.listen_notification(message, chosen, self.subscription_id)
            if notification is not None and not await self.consumer.write_event(notification):
                return

    async def _close_gracefully(self) -> None:
        if self.consumer.response_finished or self.consumer.disconnected.is_set():
            return
        await self.consumer.write_event(modern.listen_closed(self.subscription_id, dispatcher))
        await self.consumer.finish_response()
