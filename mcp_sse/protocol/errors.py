"""JSON-RPC and MCP error codes, and the exception that carries one."""

from __future__ import annotations

import re
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP <= 2025-11-25: a resource that does not exist.
RESOURCE_NOT_FOUND = -32002
# MCP 2025-11-25: the client must open a URL before the request can proceed.
URL_ELICITATION_REQUIRED = -32042
# MCP 2026-07-28 (reserved range -32020..-32099).
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022


class MCPError(Exception):
    """A protocol fault that becomes a JSON-RPC error object.

    Raised anywhere below the dispatcher; the dispatcher is the only place that turns it (and
    every other exception) into an error response.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def __repr__(self) -> str:
        return f"MCPError({self.code}, {self.message!r})"


# Characters of a client-supplied value that an error message repeats, at most.
ECHO_MAX_CHARS = 200
ELLIPSIS = "\u2026"
# Control characters and lone surrogates: shown as escapes, never repeated raw.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo(value: Any, *, quoted: bool = False, limit: int = ECHO_MAX_CHARS) -> str:
    """A client-supplied value as an error message may repeat it: its text cut to ``limit``
    characters with an ellipsis, control characters and lone surrogates as escapes, and in
    quotes (``repr`` style) when ``quoted``. Every message that echoes what a client sent (a
    method, tool or prompt name, a URI, a cursor, a header value) goes through here, so a
    100 KB name is not sent back whole and no echo can carry text UTF-8 cannot encode."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + ELLIPSIS
    if quoted:
        return repr(text)
    return text if text.isprintable() else _UNPRINTABLE.sub(_escape, text)


def invalid_params(message: str, data: Any = None) -> MCPError:
    return MCPError(INVALID_PARAMS, message, data)


def method_not_found(method: str) -> MCPError:
    return MCPError(METHOD_NOT_FOUND, f"Method not found: {echo(method)}")


def missing_extension(what: str, extension: str) -> MCPError:
    """-32021 naming an extension the request did not declare (``data`` as SEP-2663 shows it)."""
    return MCPError(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"{what} needs the client to declare the {extension} extension in this request's _meta",
        {"requiredCapabilities": {"extensions": {extension: {}}}},
    )


# ``data.reason`` of the error answered while the server's shared store (Redis) is out: the
# transports send it with 503 and Retry-After, and the client retries.
UNAVAILABLE_REASON = "unavailable"


def unavailable() -> dict[str, Any]:
    """The error object for a request the server cannot serve while its shared store is out."""
    return {
        "code": INTERNAL_ERROR,
        "message": "The server cannot reach its shared store (Redis) right now: retry shortly",
        "data": {"reason": UNAVAILABLE_REASON},
    }
