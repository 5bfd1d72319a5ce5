"""The protected resource metadata document (RFC 9728), served at the MCP endpoint's
well-known URL: public (clients read it before they have a token), JSON, CORS-open (browser
clients such as the MCP Inspector fetch it cross-origin)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import DisallowedHost

from ..auth.oauth import protected_resource_metadata
from ..protocol import jsonutil
from .base import host_allowed

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-max-age", b"86400"),
]


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    all_headers = [*CORS_HEADERS, *headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def _json(payload: Any) -> bytes:
    return jsonutil.dumps(payload)


async def protected_resource_metadata_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI app: GET/HEAD the document, OPTIONS the CORS preflight, anything else 405."""
    method = str(scope.get("method", "GET")).upper()
    json_type = (b"content-type", b"application/json")
    if method == "OPTIONS":
        await _respond(send, 204, b"", [])
        return
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, _json({"error": "method not allowed"}), [json_type, (b"allow", b"GET, OPTIONS")])
        return
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"host"), "")
    try:
        if not host_allowed(host):
            raise DisallowedHost(host)
        document = protected_resource_metadata(scope)
    except DisallowedHost:
        await _respond(send, 400, _json({"error": "host not allowed (see ALLOWED_HOSTS)"}), [json_type])
        return
    body = _json(document)
    headers = [json_type, (b"cache-control", b"public, max-age=3600")]
    if method == "HEAD":
        all_headers = [*CORS_HEADERS, *headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": all_headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await _respond(send, 200, body, headers)
