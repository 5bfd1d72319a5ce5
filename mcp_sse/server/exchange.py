"""One client request being served: the server side of a tool's :class:`~mcp_sse.context.Context`.

The transport supplies ``emit`` (write a message on this request's stream) and ``reachable``
(make sure the client's replies and cancellations can find this consumer through the channel
layer). The exchange numbers server-to-client requests, waits for their answers and applies the
client's log level.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..conf import mcp_settings
from ..context import LOG_LEVELS, Caller, RequestInfo
from ..protocol.errors import INVALID_PARAMS, MCPError
from ..protocol.jsonrpc import Response, notification_message, request_message
from .routing import request_token, server_request_id
from .session import Session

Emit = Callable[[dict[str, Any]], Awaitable[None]]

# Which client capability a server-to-client request needs.
REQUIRED_CAPABILITY = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}


class ClientRequestError(Exception):
    """The client answered a server-to-client request with an error, or not in time."""

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error or {}


async def _nothing() -> None:
    return None


class Exchange:
    def __init__(
        self,
        *,
        caller: Caller,
        info: RequestInfo,
        session: Session | None = None,
        emit: Emit | None = None,
        reachable: Callable[[], Awaitable[None]] | None = None,
        log_level: str | None = None,
        modern: bool = False,
        close_stream: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.caller = caller
        self.info = info
        self.session = session
        self._emit = emit
        self._reachable = reachable or _nothing
        self._close_stream = close_stream or _nothing
        self.log_level = log_level
        self.modern = modern
        self.token = request_token(info.request_id)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._asked = 0
        self.emitted = 0
        # Set by the dispatcher when initialize created a new session (the transport sends its id).
        self.new_session: Session | None = None
        # The tool's Context, once one is running (so a cancellation can flag it).
        self.context: Any = None

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
        await self._close_stream()

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
        await self._reachable()
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
                f"the client answered {method} with an error: {response.error.get('message', '')}", response.error
            )
        return response.result or {}

    def deliver(self, response: Response) -> bool:
        """Hand a client's answer to the waiting ``request``; False if nobody waits for it."""
        future = self._pending.get(str(response.id))
        if future is None or future.done():
            return False
        future.set_result(response)
        return True
