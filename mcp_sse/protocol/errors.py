"""JSON-RPC and MCP error codes, and the exception that carries one."""

from __future__ import annotations

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


def invalid_params(message: str, data: Any = None) -> MCPError:
    return MCPError(INVALID_PARAMS, message, data)


def method_not_found(method: str) -> MCPError:
    return MCPError(METHOD_NOT_FOUND, f"Method not found: {method}")
