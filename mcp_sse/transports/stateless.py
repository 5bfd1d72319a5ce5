"""Stateless Streamable HTTP (2026-07-28): one POST, one self-contained request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import Caller
from ..protocol.errors import METHOD_NOT_FOUND
from ..protocol.jsonrpc import Notification, Request
from .base import HTTPError

if TYPE_CHECKING:
    from .streamable import StreamableHTTPConsumer


async def serve_stateless(consumer: StreamableHTTPConsumer, caller: Caller, message: Request | Notification) -> None:
    request_id = message.id if isinstance(message, Request) else None
    raise HTTPError(
        404,
        f"Method not found: {message.method} (2026-07-28 is not served yet)",
        code=METHOD_NOT_FOUND,
        request_id=request_id,
    )
