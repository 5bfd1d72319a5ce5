"""mcp_sse.transports.status (the one outcome -> HTTP status table) and each transport's HTTP
answers to bad requests, in-process through the real ASGI stack."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_sse.protocol import versions
from mcp_sse.protocol.errors import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_sse.testing import MCPTestClient
from mcp_sse.transports.status import status_of_rejection, status_of_response

from .conftest import http

pytestmark = pytest.mark.django_db(transaction=True)

V = "2026-07-28"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def error(code: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "x"}}


def test_the_table() -> None:
    ok = {"jsonrpc": "2.0", "id": 1, "result": {}}
    for code in (METHOD_NOT_FOUND, HEADER_MISMATCH, INVALID_PARAMS, INTERNAL_ERROR):
        assert status_of_response(error(code), stateless=False) == 200  # before 2026: always 200
    assert status_of_response(ok, stateless=True) == 200
    assert status_of_response(error(HEADER_MISMATCH), stateless=True) == 400
    assert status_of_response(error(MISSING_REQUIRED_CLIENT_CAPABILITY), stateless=True) == 400
    assert status_of_response(error(UNSUPPORTED_PROTOCOL_VERSION), stateless=True) == 400
    assert status_of_response(error(METHOD_NOT_FOUND), stateless=True) == 404
    assert status_of_response(error(INVALID_PARAMS), stateless=True) == 200  # a served request's error
    assert status_of_response(error(INTERNAL_ERROR), stateless=True) == 200
    assert status_of_rejection(INVALID_PARAMS) == 400  # refused before serving (bad _meta)
    assert status_of_rejection(HEADER_MISMATCH) == 400
    assert status_of_rejection(METHOD_NOT_FOUND) == 404


# -- Streamable HTTP, stateful ------------------------------------------------------------------
async def test_streamable_stateful_errors() -> None:
    async with MCPTestClient() as client:
        # A JSON-RPC error of a served request travels with 200.
        status, _, body = await client.http("POST", b'{"jsonrpc":"2.0","id":5,"method":"no/such"}')
        assert status == 200 and b'"code":-32601' in body
        status, _, body = await client.http("POST", b"{not json")
        assert status == 400 and f'"code":{PARSE_ERROR}'.encode() in body
        status, _, body = await client.http("POST", b"[]")
        assert status == 400 and f'"code":{INVALID_REQUEST}'.encode() in body
        status, _, _ = await client.http("POST", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"accept": "application/json"})
        assert status == 406
        status, _, _ = await client.http("POST", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"content-type": "text/plain"})
        assert status == 415
        status, headers, _ = await client.http("PUT", b"")
        assert status == 405 and headers["allow"] == "GET, POST, DELETE"
        status, _, _ = await client.http("POST", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"mcp-session-id": "unknown"})
        assert status == 404
        status, _, _ = await client.http(
            "POST", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"mcp-protocol-version": "1999-01-01"}
        )
        assert status == 400


async def test_streamable_needs_a_session_header_after_initialize() -> None:
    reply = await http("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, ACCEPT)
    assert reply.status == 400 and "Mcp-Session-Id" in reply.json()["error"]["message"]


# -- Streamable HTTP, stateless 2026-07-28 ---------------------------------------------------------
def modern_body(method: str, **params: Any) -> dict[str, Any]:
    meta = {versions.META_PROTOCOL_VERSION: V, versions.META_CLIENT_CAPABILITIES: {}}
    return {"jsonrpc": "2.0", "id": 9, "method": method, "params": {**params, "_meta": meta}}


def modern_headers(method: str, **extra: str) -> dict[str, str]:
    return {**ACCEPT, "mcp-protocol-version": V, "mcp-method": method, **extra}


async def test_stateless_errors_map_through_the_table() -> None:
    ok = await http("POST", "/mcp", modern_body("tools/list"), modern_headers("tools/list"))
    assert ok.status == 200 and ok.json()["result"]["resultType"] == "complete"
    mismatch = await http("POST", "/mcp", modern_body("tools/list"), modern_headers("tools/call"))
    assert mismatch.status == 400 and mismatch.json()["error"]["code"] == HEADER_MISMATCH
    assert mismatch.json()["id"] == 9
    unknown = await http("POST", "/mcp", modern_body("ping"), modern_headers("ping"))
    assert unknown.status == 404 and unknown.json()["error"]["code"] == METHOD_NOT_FOUND
    no_meta = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}
    bad_meta = await http("POST", "/mcp", no_meta, modern_headers("tools/list"))
    assert bad_meta.status == 400 and bad_meta.json()["error"]["code"] == INVALID_PARAMS
    # A served request's own error (unknown tool) travels with 200.
    body = modern_body("tools/call", name="nope", arguments={})
    served = await http("POST", "/mcp", body, modern_headers("tools/call", **{"mcp-name": "nope"}))
    assert served.status == 200 and served.json()["error"]["code"] == INVALID_PARAMS
    # 2026 has no GET stream and no sessions.
    assert (await http("GET", "/mcp", headers={"mcp-protocol-version": V})).status == 405
    assert (await http("DELETE", "/mcp", headers={"mcp-protocol-version": V})).status == 405


# -- legacy HTTP+SSE -----------------------------------------------------------------------------
async def test_legacy_messages_endpoint_errors() -> None:
    post = {"content-type": "application/json"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert (await http("GET", "/mcp/messages")).status == 405
    assert (await http("POST", "/mcp/messages", ping, post)).status == 400  # no session_id
    assert (await http("POST", "/mcp/messages", ping, post, query="session_id=unknown")).status == 404
    assert (await http("POST", "/mcp/sse")).status == 405
    assert (await http("GET", "/mcp/sse", headers={"accept": "application/json"})).status == 406


async def test_legacy_messages_endpoint_checks_the_body_of_a_known_session() -> None:
    from mcp_sse.server.leases import Lease
    from mcp_sse.server.routing import session_stream_lease
    from mcp_sse.server.session import SessionStore

    session = await SessionStore().create("anonymous", "sse")
    query = f"session_id={session.id}"
    post = {"content-type": "application/json"}
    stream = Lease(session_stream_lease(session.id))  # what the worker holding its /sse stream holds
    await stream.acquire()
    bad_json = await http("POST", "/mcp/messages", b"{nope", post, query=query)
    assert bad_json.status == 400 and bad_json.json()["error"]["code"] == PARSE_ERROR
    batch = await http("POST", "/mcp/messages", [{"jsonrpc": "2.0", "id": 1, "method": "ping"}], post, query=query)
    assert batch.status == 400 and batch.json()["error"]["code"] == INVALID_REQUEST
    invalid = await http("POST", "/mcp/messages", {"jsonrpc": "1.0", "id": 4}, post, query=query)
    assert invalid.status == 400 and invalid.json()["error"]["code"] == INVALID_REQUEST
    wrong_type = await http("POST", "/mcp/messages", b"{}", {"content-type": "text/plain"}, query=query)
    assert wrong_type.status == 415
    accepted = await http("POST", "/mcp/messages", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, post, query=query)
    assert accepted.status == 202
    # Once no worker holds the session's stream (its worker died), the session is gone: 404.
    await stream.release()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert (await http("POST", "/mcp/messages", ping, post, query=query)).status == 404
    assert await SessionStore().get(session.id) is None
    # A session of the other transport is not a legacy session.
    streamable = await SessionStore().create("anonymous", "streamable-http")
    other = await http("POST", "/mcp/messages", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, post, query=f"session_id={streamable.id}")
    assert other.status == 404
