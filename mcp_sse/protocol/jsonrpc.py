"""JSON-RPC 2.0 message shapes and their validation.

A parsed body becomes a list of :class:`Request`, :class:`Notification` and :class:`Response`
objects. Anything that is not a valid JSON-RPC 2.0 message raises :class:`MCPError` with
``INVALID_REQUEST`` and a message that names what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import INVALID_REQUEST, MCPError

RequestId = str | int


@dataclass(slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.params.get("_meta")
        return meta if isinstance(meta, dict) else {}


@dataclass(slots=True)
class Notification:
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Response:
    """A client's answer to a server-to-client request."""

    id: RequestId | None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


Message = Request | Notification | Response


def _valid_id(value: Any) -> bool:
    # bool is an int subclass but never a valid id; MCP forbids null ids on requests.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_message(obj: Any) -> Message:
    """Validate one decoded JSON value as a JSON-RPC 2.0 message."""
    if not isinstance(obj, dict):
        raise MCPError(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be a JSON object")
    if obj.get("jsonrpc") != "2.0":
        raise MCPError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be exactly "2.0"')
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str) or not method:
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string')
        params = obj.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "params" must be an object')
        if "id" not in obj:
            return Notification(method, params)
        if not _valid_id(obj["id"]):
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
        return Request(obj["id"], method, params)
    if "result" in obj or "error" in obj:
        if "result" in obj and "error" in obj:
            raise MCPError(INVALID_REQUEST, "Invalid Request: a response has either result or error")
        rid = obj.get("id")
        if rid is not None and not _valid_id(rid):
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
        result = obj.get("result")
        error = obj.get("error")
        if "result" in obj and not isinstance(result, dict):
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "result" must be an object')
        if "error" in obj and not (isinstance(error, dict) and isinstance(error.get("code"), int)):
            raise MCPError(INVALID_REQUEST, 'Invalid Request: "error" must be an object with an integer code')
        return Response(rid, result, error)
    raise MCPError(INVALID_REQUEST, 'Invalid Request: a message needs "method", "result" or "error"')


def result_message(request_id: RequestId | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(request_id: RequestId | None, error: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def notification_message(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def request_message(request_id: RequestId, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message
