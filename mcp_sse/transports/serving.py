"""Running client requests inside a consumer: in-flight tracking, replies and cancellation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..context import RequestInfo
from ..protocol.jsonrpc import Request, Response
from ..server.dispatcher import Dispatcher
from ..server.exchange import Exchange
from ..server.routing import cancel_key, request_group
from ..server.session import Session
from ..store import shared_cache
from .base import MCPConsumer

logger = logging.getLogger("mcp_sse")

# A call becomes reachable for cancellation only once it has run this long: quick calls never
# touch the channel layer. A cancel that arrives earlier is noted in the cache and seen on join.
CANCEL_JOIN_DELAY = 0.05

dispatcher = Dispatcher()


class InFlight:
    __slots__ = ("exchange", "task", "timer")

    def __init__(self, exchange: Exchange, task: asyncio.Task[Any]) -> None:
        self.exchange = exchange
        self.task = task
        self.timer: asyncio.TimerHandle | None = None


class RequestServingConsumer(MCPConsumer):
    """A consumer that runs requests of one session and routes the client's replies to them."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inflight: dict[str, InFlight] = {}
        await super().__call__(scope, receive, send)

    def request_info(self, request: Request | None, session: Session | None) -> RequestInfo:
        """What a tool's context knows about a request of a handshake-era session."""
        params = request.params if request else {}
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        return RequestInfo(
            request_id=request.id if request else None,
            method=request.method if request else "",
            session_id=session.id if session else None,
            protocol_version=session.protocol_version if session else "",
            transport=self.transport_name,
            client_name=session.client_name if session else "",
            client_version=session.client_version if session else "",
            client_capabilities=session.client_capabilities if session else {},
            remote_addr=self.remote_addr,
            progress_token=meta.get("progressToken") if meta else None,
        )

    def session_id_for_routing(self) -> str | None:
        raise NotImplementedError

    async def run_request(
        self, request: Request, exchange: Exchange, *, in_current_task: bool = False
    ) -> dict[str, Any] | None:
        """Serve a request; None when the client cancelled it (no response is sent then).

        ``in_current_task`` runs the dispatcher in the calling task (which the caller owns
        and which serves nothing else) instead of a task of its own: one task fewer per call.
        """
        session_id = self.session_id_for_routing()
        exchange._reachable = self._reachable_for(exchange, session_id)  # join before asking the client
        if in_current_task:
            task: asyncio.Task[Any] | None = asyncio.current_task()
            assert task is not None
            work: Any = dispatcher.handle(request, exchange)
        else:
            task = asyncio.ensure_future(dispatcher.handle(request, exchange))
            work = task
        entry = InFlight(exchange, task)
        self.inflight[exchange.token] = entry
        if session_id and request.method in ("tools/call", "prompts/get", "resources/read"):
            loop = asyncio.get_running_loop()
            entry.timer = loop.call_later(
                CANCEL_JOIN_DELAY, lambda: asyncio.ensure_future(self._join_for_cancel(entry, session_id))
            )
        try:
            return await work
        except asyncio.CancelledError:
            if not self.inflight_cancelled(exchange):
                raise  # we were cancelled ourselves (server shutdown), not by the client
            if in_current_task:
                task.uncancel()  # handled: the task goes on to answer
            return None
        finally:
            if entry.timer is not None:
                entry.timer.cancel()
            self.inflight.pop(exchange.token, None)
            if session_id:
                await self.leave(request_group(session_id, exchange.token))

    def inflight_cancelled(self, exchange: Exchange) -> bool:
        return bool(getattr(exchange, "cancelled_by_client", False))

    def _reachable_for(self, exchange: Exchange, session_id: str | None) -> Any:
        async def reachable() -> None:
            if session_id:
                await self.join(request_group(session_id, exchange.token))

        return reachable

    async def _join_for_cancel(self, entry: InFlight, session_id: str) -> None:
        if entry.task.done():
            return
        try:
            await self.join(request_group(session_id, entry.exchange.token))
            if await shared_cache().get(cancel_key(session_id, entry.exchange.token)):
                self.cancel_inflight(entry.exchange.token, "cancelled before the call was reachable")
        except Exception:
            # Fire-and-forget: the call goes on, it just cannot be cancelled from another worker.
            logger.warning("mcp_sse: could not make a call reachable for cancellation", exc_info=True)

    def cancel_inflight(self, token: str, reason: str) -> None:
        entry = self.inflight.get(token)
        if entry is None or entry.task.done():
            return
        entry.exchange.cancelled_by_client = True  # type: ignore[attr-defined]
        if entry.exchange.context is not None:
            entry.exchange.context.mark_cancelled()
        entry.task.cancel(reason or "cancelled by the client")

    def deliver_reply(self, token: str, payload: dict[str, Any]) -> None:
        entry = self.inflight.get(token)
        if entry is None:
            return
        entry.exchange.deliver(Response(payload.get("id"), payload.get("result"), payload.get("error")))

    async def on_layer_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "mcp.client.reply":
            self.deliver_reply(str(message.get("token")), message)
        elif kind == "mcp.client.cancel":
            self.cancel_inflight(str(message.get("token")), str(message.get("reason") or ""))
        else:
            await self.on_stream_message(message)

    async def on_stream_message(self, message: dict[str, Any]) -> None:
        """Override: session-wide messages (list_changed, resource updates, ...)."""
