"""Stateless Streamable HTTP (2026-07-28): one POST, one self-contained request.

The request's ``_meta`` and headers are validated first (see :class:`mcp_sse.server.eras.StatelessEra`);
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
from typing import Any

from ..context import Caller
from ..notify import revokes
from ..protocol import jsonutil
from ..protocol.errors import MCPError
from ..protocol.jsonrpc import Notification, Request, error_message
from ..server import subscriptions
from ..server.eras import Rejected, RequestFacts
from ..server.exchange import Port
from ..server.mrtr import RequestMeta
from ..server.routing import BROADCAST_GROUP
from .base import HTTPError, MCPConsumer
from .status import retry_after_headers, status_of_rejection, status_of_response
from .streams import Stream

logger = logging.getLogger("mcp_sse")

CALL_METHODS = ("tools/call", "resources/read", "prompts/get")


async def serve_stateless(consumer: MCPConsumer, caller: Caller, message: Request | Notification) -> None:
    if isinstance(message, Notification):
        # 2026-07-28 defines no client notifications over HTTP; accepted and ignored.
        await consumer.send_response(202, b"")
        return
    request = message
    header_pairs = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in consumer.scope.get("headers", []))
    facts = RequestFacts(
        request,
        caller,
        consumer.server.stateless.transport,
        consumer.remote_addr,
        None,
        header_pairs,
        remote_port=consumer.remote_port,
        http_version=consumer.http_version,
    )
    try:
        meta = consumer.server.stateless.admit(facts)
    except Rejected as exc:
        raise HTTPError(
            status_of_rejection(exc.code), exc.message, code=exc.code, request_id=request.id, data=exc.data
        ) from None
    if request.method in CALL_METHODS:
        await consumer.enforce_rate_limit(caller, request.id)
    if request.method == "subscriptions/listen":
        await ListenStream(consumer, caller, request).run()
        return
    await serve_request(consumer, facts, meta)


class RequestStream:
    """The response to one request: JSON unless something is emitted before the result."""

    def __init__(self, consumer: MCPConsumer) -> None:
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
                status = status_of_response(response, stateless=True)
                await self.consumer.send_response(status, jsonutil.dumps(response), retry_after_headers(status))
                return
            await self.consumer.write_event(response)
            await self.consumer.finish_response()


async def serve_request(consumer: MCPConsumer, facts: RequestFacts, meta: RequestMeta) -> None:
    stream = RequestStream(consumer)
    era = consumer.server.stateless
    lifecycle = consumer.server.requests
    exchange = era.exchange(facts, meta, Port(emit=stream.emit))
    # The lifecycle serves it in this task (in_current_task): one task per request.
    work = asyncio.ensure_future(lifecycle.serve(era, facts.request, exchange, in_current_task=True))
    watcher = asyncio.ensure_future(consumer.watch_disconnect())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            # The client closed the stream: that is the cancellation (2026-07-28).
            lifecycle.cancel_exchange(exchange, "the client closed the response stream")
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        response = work.result()
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if response is not None:
        await stream.finish(response)


class ListenStream(Stream):
    """One ``subscriptions/listen`` response stream: an acknowledgement, then the broadcasts
    the client opted in to, until it leaves or the server ends the subscription."""

    def __init__(self, consumer: MCPConsumer, caller: Caller, request: Request) -> None:
        super().__init__(consumer)
        self.caller = caller
        self.request = request
        self.subscription_id = request.id
        self.chosen = subscriptions.ListenFilter()

    async def open(self) -> bool:
        consumer = self.consumer
        try:
            self.chosen = await subscriptions.listen_filter(
                self.request.params, self.caller, consumer.server.dispatcher
            )
        except MCPError as exc:
            await consumer.send_response(200, jsonutil.dumps(error_message(self.request.id, exc.to_error())))
            return False
        # Join before acknowledging: nothing broadcast after the ack can be missed.
        await consumer.join(BROADCAST_GROUP)
        await consumer.start_sse()
        await consumer.write_event(subscriptions.acknowledgement(self.chosen, self.subscription_id))
        return True

    async def mcp_list_changed(self, message: dict[str, Any]) -> bool | None:
        return await self.send(subscriptions.list_changed(message.get("kind"), self.chosen, self.subscription_id))

    async def mcp_resource_updated(self, message: dict[str, Any]) -> bool | None:
        return await self.send(subscriptions.resource_updated(message.get("uri"), self.chosen, self.subscription_id))

    async def mcp_task_changed(self, message: dict[str, Any]) -> bool | None:
        task_id = message.get("task_id")
        if task_id not in self.chosen.task_ids:
            return None
        detailed = await self.consumer.server.tasks.snapshot(str(task_id))
        if detailed is None:
            return None
        return await self.send(subscriptions.task_status(detailed, self.chosen, self.subscription_id))

    async def send(self, notification: dict[str, Any] | None) -> bool | None:
        if notification is not None and not await self.consumer.write_event(notification):
            return False  # the client is gone
        return None

    async def mcp_listen_end(self, message: dict[str, Any]) -> bool:
        await self.close_gracefully()
        return False

    async def mcp_token_revoked(self, message: dict[str, Any]) -> bool | None:
        if revokes(message, self.caller):
            await self.close_gracefully()
            return False
        return None

    async def on_shutdown(self) -> None:
        # Server shutdown: end the subscription with its final response if we still can.
        await self.close_gracefully()

    async def farewell(self) -> None:
        # A draining worker ends the subscription with its final response: the client listens
        # again (elsewhere). 2026-07-28 streams have no event ids to resume from.
        await self.close_gracefully()

    async def close_gracefully(self) -> None:
        consumer = self.consumer
        if consumer.response_finished or consumer.disconnected.is_set():
            return
        await consumer.write_event(subscriptions.listen_closed(self.subscription_id, consumer.server.dispatcher))
        await consumer.finish_response()
