"""The life of one client request, from the moment a transport hands it over to its answer.

:class:`RequestLifecycle` owns what used to be spread over transports and server objects:

* the in-flight table (per server object, keyed by session and request token);
* cancellation (``notifications/cancelled``, or a 2026 client closing its response stream):
  the exchange is flagged (``ctx.cancelled``) and the running task cancelled;
* the client's replies to server-to-client requests (sampling, elicitation, roots): one path
  for every transport — delivered here when the request runs in this process, otherwise
  routed through the channel layer to the consumer that runs it, which hands it back here;
* the era's policy for the request (``era.handle``: plain dispatch, or MRTR rounds).

Transports supply a :class:`~mcp_sse.server.exchange.Port` (how to write to the client, how to
join a channel-layer group) and map the outcome to HTTP; they keep no request state of their own.

Seam for durable tasks: a request the server decides to run as a task is started with
:meth:`detach` under the task's id (the caller answers ``CreateTaskResult`` at once); it is an
in-flight request like any other, so :meth:`cancel` with that id reaches it on this worker.

Draining (a worker told to stop, see :mod:`.drain`): :meth:`drain` stops new work (transports
read :attr:`RequestLifecycle.draining` and answer 503), tells the held streams and responses
(:meth:`on_drain`), lets requests in flight finish until the drain time, then cuts off the rest:
each is cancelled with :meth:`Exchange.cut <mcp_sse.server.exchange.Exchange.cut>`, so its client
gets an error and the call log a row saying why.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from ..context import RequestInfo
from ..protocol.jsonrpc import Message, Notification, Request, Response, error_message
from ..store import shared_cache
from . import telemetry
from .eras import Era
from .exchange import Exchange, cut_short_error
from .routing import cancel_key, request_group, request_token, token_of_server_request

logger = logging.getLogger("mcp_sse")

# A call becomes reachable for cancellation only once it has run this long: quick calls never
# touch the channel layer. A cancel that arrives earlier is noted in the cache and seen on join.
CANCEL_JOIN_DELAY = 0.05
# Requests a client may want to cancel (the others answer at once).
CANCELLABLE_METHODS = ("tools/call", "prompts/get", "resources/read")
# Seconds the requests cut off at the end of a drain get to send their error and end.
CUT_GRACE = 2.0
# How often a drain looks whether everything has finished.
DRAIN_POLL = 0.05

DrainListener = Callable[[], Awaitable[None]]

# Every lifecycle of this process (one per server object): a stopping process drains them all.
_lifecycles: weakref.WeakSet[RequestLifecycle] = weakref.WeakSet()


def lifecycles() -> list[RequestLifecycle]:
    """The request lifecycles alive in this process."""
    return list(_lifecycles)


def inflight_key(session_id: str | None, token: str) -> str:
    return f"{session_id}:{token}"


class InFlight:
    """One running request: its exchange and the task that serves it."""

    __slots__ = ("exchange", "key", "task", "timer")

    def __init__(self, key: str, exchange: Exchange, task: asyncio.Task[Any]) -> None:
        self.key = key
        self.exchange = exchange
        self.task = task
        self.timer: asyncio.TimerHandle | None = None


class RequestLifecycle:
    """In-flight requests of one server object, their cancellation and the client's replies."""

    def __init__(self) -> None:
        self.inflight: dict[str, InFlight] = {}
        # Work that outlives its HTTP connection: references only, so the tasks are not
        # garbage-collected mid-flight.
        self._detached: set[asyncio.Task[Any]] = set()
        # Set once this worker stops taking new sessions and requests.
        self.draining = False
        self._drain_listeners: dict[int, DrainListener] = {}
        self._next_listener = 0
        _lifecycles.add(self)

    # -- serving --------------------------------------------------------------------------
    async def serve(
        self,
        era: Era,
        request: Request,
        exchange: Exchange,
        *,
        in_current_task: bool = False,
        key: str | None = None,
    ) -> dict[str, Any] | None:
        """Serve a request under ``era``; None when the client cancelled it (nothing is sent).

        ``in_current_task`` runs it in the calling task (which the caller owns and which serves
        nothing else) instead of a task of its own: one task fewer per call. ``key`` replaces
        the in-flight key (see :meth:`key_of`), e.g. with a task's id.

        With OpenTelemetry on (see :mod:`.telemetry`) the request is served inside its SERVER
        span, ended here with what it came to, for every transport and era alike.
        """
        span = telemetry.start_request(request.method, request.params, request.id, exchange.info)
        if span is None:
            return await self._serve(era, request, exchange, in_current_task, key)
        arguments = request.params.get("arguments") if request.method == "tools/call" else None
        try:
            response = await self._serve(era, request, exchange, in_current_task, key)
        except BaseException as exc:
            span.end(None, error=exc, arguments=arguments)
            raise
        new_session = exchange.new_session
        span.end(response, session_id=new_session.id if new_session else None, arguments=arguments)
        return response

    async def _serve(
        self, era: Era, request: Request, exchange: Exchange, in_current_task: bool, key: str | None
    ) -> dict[str, Any] | None:
        if in_current_task:
            task: asyncio.Task[Any] | None = asyncio.current_task()
            assert task is not None
            work: Any = era.handle(request, exchange)
        else:
            task = asyncio.ensure_future(era.handle(request, exchange))
            work = task
        session_id = exchange.info.session_id
        key = key or self.key_of(exchange)
        entry = InFlight(key, exchange, task)
        self.inflight[key] = entry
        if session_id and exchange.port.join is not None and request.method in CANCELLABLE_METHODS:
            loop = asyncio.get_running_loop()
            entry.timer = loop.call_later(
                CANCEL_JOIN_DELAY, lambda: self.keep_running(asyncio.ensure_future(self._join_for_cancel(entry)))
            )
        try:
            return await work
        except asyncio.CancelledError:
            if exchange.cut_short is not None:
                # Cut off outside the dispatcher (which answers a cut itself): answered here.
                if in_current_task:
                    task.uncancel()
                return error_message(request.id, cut_short_error(exchange.cut_short))
            if not exchange.cancelled:
                raise  # we were cancelled ourselves (server shutdown), not by the client
            if in_current_task:
                task.uncancel()  # handled: the task goes on to answer
            return None
        finally:
            if entry.timer is not None:
                entry.timer.cancel()
            if self.inflight.get(key) is entry:
                del self.inflight[key]
            group = exchange.joined_group
            if group is not None and exchange.port.leave is not None:
                exchange.joined_group = None
                await exchange.port.leave(group)

    @staticmethod
    def key_of(exchange: Exchange) -> str:
        """The in-flight key of a request. Stateless requests are not addressable by id (no
        session): they get unique keys and are cancelled through :meth:`cancel_exchange`."""
        session_id = exchange.info.session_id
        return inflight_key(session_id, exchange.token) if session_id else f"~{id(exchange)}"

    async def _join_for_cancel(self, entry: InFlight) -> None:
        if entry.task.done():
            return
        session_id = entry.exchange.info.session_id
        try:
            await entry.exchange.make_reachable()
            if session_id and await shared_cache().get(cancel_key(session_id, entry.exchange.token)):
                self.cancel(entry.key, "cancelled before the call was reachable")
        except Exception:
            # Fire-and-forget: the call goes on, it just cannot be cancelled from another worker.
            logger.warning("mcp_sse: could not make a call reachable for cancellation", exc_info=True)

    def detach(self, era: Era, request: Request, exchange: Exchange, *, key: str) -> asyncio.Task[Any]:
        """Serve a request in a task of its own that outlives the HTTP exchange that started it,
        registered under ``key`` (cancel it with :meth:`cancel`); the task's result is the
        response message (None once cancelled)."""
        return self.keep_running(
            asyncio.ensure_future(self.serve(era, request, exchange, in_current_task=True, key=key))
        )

    def keep_running(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Hold a reference to work that outlives the coroutine that started it."""
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    # -- draining -----------------------------------------------------------------------------
    def on_drain(self, listener: DrainListener) -> Callable[[], None]:
        """Have ``listener`` called when this worker starts draining (soon, if it already is):
        a held stream ends with a final event, a response moves its client elsewhere. Returns
        the function that unregisters it; a drain waits for its registered listeners' owners to
        unregister (their streams to end) as it waits for requests in flight."""
        number = self._next_listener
        self._next_listener += 1
        self._drain_listeners[number] = listener
        if self.draining:
            self.keep_running(asyncio.ensure_future(self._tell(listener)))

        def unregister() -> None:
            self._drain_listeners.pop(number, None)

        return unregister

    async def drain(self, seconds: float, reason: str) -> list[str]:
        """Stop taking work, let what is in flight finish for up to ``seconds``, then cut off
        what is left with ``reason`` (their clients get it as an error). The keys cut off."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self.draining = True
        told = [asyncio.ensure_future(self._tell(listener)) for listener in list(self._drain_listeners.values())]
        if told:
            await asyncio.wait(told, timeout=max(0.0, deadline - loop.time()))
        await self._until_idle(deadline)
        cut: list[str] = []
        for entry in list(self.inflight.values()):
            if not entry.task.done():
                entry.exchange.cut(reason)
                entry.task.cancel(reason)
                cut.append(entry.key)
        if cut or not self.idle:
            await self._until_idle(loop.time() + CUT_GRACE)
        if not self.idle:
            logger.warning(
                "mcp_sse: drain ended with %d requests, %d streams and %d tasks still open",
                len(self.inflight),
                len(self._drain_listeners),
                len(self._detached),
            )
        return cut

    @property
    def idle(self) -> bool:
        """Nothing in flight, no held stream, no work outliving its connection."""
        return not self.inflight and not self._drain_listeners and not self._detached

    async def _until_idle(self, deadline: float) -> None:
        # Polled: idleness is a condition over three collections that change in many places,
        # and it is only waited for while the process stops.
        loop = asyncio.get_running_loop()
        while not self.idle and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL)

    @staticmethod
    async def _tell(listener: DrainListener) -> None:
        try:
            await listener()
        except Exception:
            logger.exception("mcp_sse: error ending a stream for a drain")

    # -- cancellation and replies -----------------------------------------------------------
    def cancel(self, key: str, reason: str) -> bool:
        """Cancel the in-flight request ``key``; False if it is not running here."""
        entry = self.inflight.get(key)
        if entry is None or entry.task.done():
            return False
        entry.exchange.mark_cancelled()
        entry.task.cancel(reason or "cancelled by the client")
        return True

    def cancel_exchange(self, exchange: Exchange, reason: str) -> bool:
        """Cancel the request ``exchange`` serves (a 2026 client closed its response stream)."""
        return self.cancel(self.key_of(exchange), reason)

    def deliver(self, key: str, response: Response) -> bool:
        """Hand the client's answer to the in-flight request ``key`` waiting for it."""
        entry = self.inflight.get(key)
        return entry is not None and entry.exchange.deliver(response)

    async def client_message(self, session_id: str, message: Message) -> bool:
        """A client's reply (to a server-to-client request) or ``notifications/cancelled``.

        Acted on here when the request it concerns runs in this process, otherwise sent through
        the channel layer to the consumer serving it (its ``mcp.client.*`` handlers call
        :meth:`deliver` / :meth:`cancel` on that worker). False when the message names no
        request we could route to (it is then dropped, as the spec allows).
        """
        if isinstance(message, Response):
            token = token_of_server_request(message.id)
            if token is None:
                return False
            if self.deliver(inflight_key(session_id, token), message):
                return True
            payload: dict[str, Any] = {"type": "mcp.client.reply", "token": token, "id": message.id}
            if message.error is not None:
                payload["error"] = message.error
            else:
                payload["result"] = message.result or {}
            return await _group_send(request_group(session_id, token), payload)
        if isinstance(message, Notification) and message.method == "notifications/cancelled":
            span = telemetry.start_request(message.method, message.params, None, RequestInfo(session_id=session_id))
            try:
                return await self._client_cancel(session_id, message)
            finally:
                if span is not None:
                    span.end(None)
        return False

    async def _client_cancel(self, session_id: str, message: Notification) -> bool:
        """``notifications/cancelled``: the request cancelled here, or where it runs."""
        request_id = message.params.get("requestId")
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return False
        token = request_token(request_id)
        reason = str(message.params.get("reason") or "")[:500]
        if self.cancel(inflight_key(session_id, token), reason):
            return True
        # Also noted in the cache: a call that joins its group late still finds out.
        await shared_cache().set(cancel_key(session_id, token), 1, 300)
        return await _group_send(
            request_group(session_id, token), {"type": "mcp.client.cancel", "token": token, "reason": reason}
        )

    def layer_reply(self, session_id: str, message: dict[str, Any]) -> None:
        """An ``mcp.client.reply`` that reached this worker's consumer through the channel layer."""
        token = str(message.get("token"))
        self.deliver(
            inflight_key(session_id, token), Response(message.get("id"), message.get("result"), message.get("error"))
        )

    def layer_cancel(self, session_id: str, message: dict[str, Any]) -> None:
        """An ``mcp.client.cancel`` that reached this worker's consumer through the channel layer."""
        self.cancel(inflight_key(session_id, str(message.get("token"))), str(message.get("reason") or ""))


async def _group_send(group: str, payload: dict[str, Any]) -> bool:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return False
    await layer.group_send(group, payload)
    return True
