"""One client request being served: the server side of a tool's :class:`~mcp_sse.context.Context`.

The transport supplies a :class:`Port`: ``emit`` (write a message on this request's stream),
``close_stream`` and, where the client's replies and cancellations travel through the channel
layer, ``join``/``leave`` (the exchange joins its request's group before it asks the client
anything). The exchange numbers server-to-client requests, waits for their answers, applies the
client's log level and carries the request's cancellation flag (read by the tool's context).
The request's life around it (in-flight table, cancellation, replies) is
:class:`~mcp_sse.server.requests.RequestLifecycle`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..conf import mcp_settings
from ..context import LOG_LEVELS, Caller, RequestInfo
from ..protocol.errors import INTERNAL_ERROR, INVALID_PARAMS, MCPError, echo
from ..protocol.jsonrpc import Response, notification_message, request_message
from .routing import request_group, request_token, server_request_id
from .session import Session

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Action = Callable[[], Awaitable[None]]
GroupAction = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Port:
    """How the server reaches the client of one request: supplied by the transport."""

    emit: Emit | None = None  # write a message on this request's response stream
    close_stream: Action | None = None  # end the response stream (the client polls to resume)
    join: GroupAction | None = None  # join a channel-layer group (replies/cancellations routed there)
    leave: GroupAction | None = None


NO_PORT = Port()

# Which client capability a server-to-client request needs.
REQUIRED_CAPABILITY = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}


SHUTDOWN_REASON = "shutdown"


def cut_short_error(reason: str) -> dict[str, Any]:
    """The JSON-RPC error of a call its worker cut off while stopping (see ``Exchange.cut``)."""
    return {"code": INTERNAL_ERROR, "message": reason, "data": {"reason": SHUTDOWN_REASON}}


class ClientRequestError(Exception):
    """The client answered a server-to-client request with an error, or not in time."""

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error or {}


class Exchange:
    def __init__(
        self,
        *,
        caller: Caller,
        info: RequestInfo,
        session: Session | None = None,
        port: Port = NO_PORT,
        log_level: str | None = None,
        modern: bool = False,
    ) -> None:
        self.caller = caller
        self.info = info
        self.session = session
        self.port = port
        self._emit = port.emit
        self.log_level = log_level
        self.modern = modern
        self.token = request_token(info.request_id)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._asked = 0
        self.emitted = 0
        # Set by the dispatcher when initialize created a new session (the transport sends its id).
        self.new_session: Session | None = None
        # Set once the client cancelled this request; tools see it as ``ctx.cancelled``.
        self.cancelled = False
        # The channel-layer group this request joined to be reachable (left when it ends).
        self.joined_group: str | None = None
        # Why the server cut this request off (its worker is stopping), once it did: unlike a
        # client's cancellation, the client then gets an error (the dispatcher answers it).
        self.cut_short: str | None = None

    def mark_cancelled(self) -> None:
        self.cancelled = True

    def cut(self, reason: str) -> None:
        """The server gives up on this request (see ``RequestLifecycle.drain``)."""
        self.cut_short = reason

    async def make_reachable(self) -> None:
        """Join this request's group so the client's replies and cancellation reach it from any
        worker (only where the transport routes them through the channel layer)."""
        if self.joined_group is None and self.port.join is not None and self.info.session_id:
            group = request_group(self.info.session_id, self.token)
            await self.port.join(group)
            self.joined_group = group

    # -- ClientLink ---------------------------------------------------------------------
    def wants_log(self, level: str) -> bool:
        if self.modern and self.log_level is None:
            return False  # 2026: only requests that asked for a log level get log messages
        threshold = self.log_level
        if threshold is None and self.session is not None:
            threshold = self.session.log_level
        if threshold is None:
            return True
        return LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold)

    async def close_stream(self) -> None:
        if self.port.close_stream is not None:
            await self.port.close_stream()

    async def begin_task(self) -> None:
        """Calls served inline have no task boundary (see ``ModernExchange``)."""

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.send(notification_message(method, params))

    async def send(self, message: dict[str, Any]) -> None:
        if self._emit is None:
            return
        self.emitted += 1
        await self._emit(message)

    async def request(self, method: str, params: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        capability = REQUIRED_CAPABILITY.get(method)
        if capability and capability not in (self.info.client_capabilities or {}):
            raise MCPError(
                INVALID_PARAMS,
                f"The client did not declare the '{capability}' capability needed for {method}",
            )
        if self._emit is None:
            raise ClientRequestError("this transport cannot send requests to the client")
        await self.make_reachable()
        self._asked += 1
        request_id = server_request_id(self.token, self._asked)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.send(request_message(request_id, method, params))
            try:
                response = await asyncio.wait_for(future, mcp_settings.CLIENT_REQUEST_TIMEOUT)
            except TimeoutError:
                raise ClientRequestError(f"the client did not answer {method} in time") from None
        finally:
            self._pending.pop(request_id, None)
        if response.error is not None:
            raise ClientRequestError(
                f"the client answered {method} with an error: {echo(response.error.get('message', ''))}",
                response.error,
            )
        return response.result or {}

    def deliver(self, response: Response) -> bool:
        """Hand a client's answer to the waiting ``request``; False if nobody waits for it."""
        future = self._pending.get(str(response.id))
        if future is None or future.done():
            return False
        future.set_result(response)
        return True
