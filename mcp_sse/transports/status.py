"""The one table from the server's outcomes to HTTP statuses.

The server layer answers in JSON-RPC terms only (a response message, or a :class:`Rejected`
refusal before serving). Which of those change the HTTP status is decided here, per era:
before 2026 every JSON-RPC answer travels with 200; on the 2026-07-28 wire a refused request
and the protocol errors the spec names get 400, and an unknown method 404. In every era, an
answer saying the server's shared store (Redis) is out gets 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol.errors import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNAVAILABLE_REASON,
    UNSUPPORTED_PROTOCOL_VERSION,
)

OK = 200
# Every era: a request the server could not serve because its shared store (Redis) is out.
UNAVAILABLE = 503

# 2026-07-28: JSON-RPC error code -> HTTP status (codes not listed travel with 200).
STATELESS_ERROR_STATUS: Mapping[int, int] = {
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}
# 2026-07-28: a request refused before it is served (invalid ``_meta`` and the above).
STATELESS_REJECTED_STATUS: Mapping[int, int] = {**STATELESS_ERROR_STATUS, INVALID_PARAMS: 400}
REJECTED_DEFAULT = 400


def status_of_response(response: Mapping[str, Any], *, stateless: bool) -> int:
    """The HTTP status of a JSON-RPC response sent as a plain JSON body."""
    error = response.get("error")
    if not isinstance(error, Mapping):
        return OK
    data = error.get("data")
    if isinstance(data, Mapping) and data.get("reason") == UNAVAILABLE_REASON:
        return UNAVAILABLE
    if not stateless:
        return OK
    return STATELESS_ERROR_STATUS.get(error.get("code"), OK)  # type: ignore[arg-type]


def retry_after_headers(status: int) -> list[tuple[bytes, bytes]]:
    """``Retry-After`` for a 503 answered while the shared store is out."""
    from ..conf import mcp_settings

    return [(b"retry-after", str(mcp_settings.UNAVAILABLE_RETRY_AFTER).encode())] if status == UNAVAILABLE else []


def status_of_rejection(code: int) -> int:
    """The HTTP status of a request the server refused before serving it."""
    return STATELESS_REJECTED_STATUS.get(code, REJECTED_DEFAULT)
