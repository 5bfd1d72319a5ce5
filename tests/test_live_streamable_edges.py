"""Streamable HTTP edge cases on a live server: each case names the rule it checks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.live import LiveDatabase, LiveServer
from tests.sse_client import events, next_event

pytestmark = pytest.mark.live

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def init_message(version: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}},
    }


async def open_session(http: httpx.AsyncClient, server: LiveServer, version: str = "2025-11-25") -> dict[str, str]:
    response = await http.post(server.mcp_url, headers=HEADERS, json=init_message(version))
    assert response.status_code == 200
    session = response.headers["mcp-session-id"]
    assert all(0x21 <= ord(c) <= 0x7E for c in session) and len(session) >= 32
    return {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": version}


async def test_foreign_origin_is_403_and_bad_host_is_421(daphne_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        foreign = await http.post(
            daphne_server.mcp_url,
            headers={**HEADERS, "origin": "http://evil.example.com"},
            json=init_message("2025-11-25"),
        )
        assert foreign.status_code == 403
        own = await http.post(
            daphne_server.mcp_url,
            headers={**HEADERS, "origin": "http://localhost:3000"},
            json=init_message("2025-11-25"),
        )
        assert own.status_code == 200
        rebound = await http.post(
            daphne_server.mcp_url,
            headers={**HEADERS, "host": "evil.example.com", "origin": "http://evil.example.com"},
            json=init_message("2025-11-25"),
        )
        assert rebound.status_code == 421


async def test_batches_only_in_2025_03_26(daphne_server: LiveServer) -> None:
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    async with httpx.AsyncClient(timeout=10) as http:
        old = await open_session(http, daphne_server, "2025-03-26")
        answered = await http.post(daphne_server.mcp_url, headers=old, json=batch)
        assert answered.status_code == 200
        assert [r["id"] for r in answered.json()] == [1, 2]
        new = await open_session(http, daphne_server, "2025-06-18")
        refused = await http.post(daphne_server.mcp_url, headers=new, json=batch)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32600
        # initialize never goes in a batch, whatever the revision
        in_batch = await http.post(daphne_server.mcp_url, headers=HEADERS, json=[init_message("2025-03-26")])
        assert in_batch.status_code == 400


async def test_notifications_and_responses_only_get_202(daphne_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        headers = await open_session(http, daphne_server)
        note = await http.post(
            daphne_server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert note.status_code == 202 and note.content == b""
        stray = await http.post(
            daphne_server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": "nobody-asked", "result": {}}
        )
        assert stray.status_code == 202


async def test_get_stream_rules(daphne_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        headers = await open_session(http, daphne_server)
        get_headers = {k: v for k, v in headers.items() if k != "content-type"}
        # GET without Accept: text/event-stream -> 406
        wrong_accept = await http.get(daphne_server.mcp_url, headers={**get_headers, "accept": "application/json"})
        assert wrong_accept.status_code == 406
        # GET without a session -> 400
        no_session = await http.get(daphne_server.mcp_url, headers={"accept": "text/event-stream"})
        assert no_session.status_code == 400
        async with http.stream(
            "GET", daphne_server.mcp_url, headers={**get_headers, "accept": "text/event-stream"}
        ) as first:
            assert first.status_code == 200
            reader = events(first)
            await asyncio.wait_for(anext(reader), 10)  # priming event
            # a second concurrent GET stream for the same session -> 409
            second = await http.get(daphne_server.mcp_url, headers={**get_headers, "accept": "text/event-stream"})
            assert second.status_code == 409
        # DELETE ends the session; the id is then unknown -> 404
        assert (await http.delete(daphne_server.mcp_url, headers=headers)).status_code == 200
        after = await http.post(
            daphne_server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert after.status_code == 404


async def test_session_of_another_principal_is_404(server_factory: Any, live_db: LiveDatabase) -> None:
    server = server_factory(extra_env={"MCP_REQUIRE_AUTH": "1"})
    live_db.create_user("edge-alice")
    live_db.create_user("edge-bob")
    alice = live_db.create_token("edge-alice")
    bob = live_db.create_token("edge-bob")
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.post(server.mcp_url, headers=HEADERS, json=init_message("2025-11-25"))
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        invalid = await http.post(
            server.mcp_url, headers={**HEADERS, "authorization": "Bearer nope"}, json=init_message("2025-11-25")
        )
        assert invalid.status_code == 401 and 'error="invalid_token"' in invalid.headers["www-authenticate"]
        response = await http.post(
            server.mcp_url, headers={**HEADERS, "authorization": f"Bearer {alice}"}, json=init_message("2025-11-25")
        )
        session = response.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        as_bob = {**HEADERS, "authorization": f"Bearer {bob}", "mcp-session-id": session}
        assert (await http.post(server.mcp_url, headers=as_bob, json=ping)).status_code == 404
        as_alice = {**HEADERS, "authorization": f"Bearer {alice}", "mcp-session-id": session}
        assert (await http.post(server.mcp_url, headers=as_alice, json=ping)).status_code == 200


async def test_idle_streams_get_keepalive_comments(server_factory: Any) -> None:
    server = server_factory(extra_env={"MCP_KEEPALIVE_INTERVAL": "0.2"})
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", f"{server.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            comments = 0
            async for line in stream.aiter_lines():
                if line.startswith(":"):
                    comments += 1
                    if comments == 2:
                        break
            assert comments == 2


async def test_list_changed_reaches_streams_on_every_worker(
    redis_pair: tuple[LiveServer, LiveServer], live_db: LiveDatabase
) -> None:
    """An admin visibility change (a Tool row saved in any process) notifies GET streams on A and B."""
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=15) as http:
        opened = []
        for server in (a, b):
            headers = await open_session(http, server)
            get_headers = {
                "accept": "text/event-stream",
                "mcp-session-id": headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            context = http.stream("GET", server.mcp_url, headers=get_headers)
            response = await context.__aenter__()
            reader = events(response)
            await asyncio.wait_for(anext(reader), 10)  # priming event
            opened.append((context, reader))
        try:
            # Save a Tool row from a third process on the same Redis (like the admin on another worker).
            live_db.manage(
                "shell",
                "--no-imports",
                "-c",
                "from mcp_sse.sync import sync_tools\n"
                "from mcp_sse.models import Tool\n"
                "sync_tools()\n"
                "t = Tool.objects.get(kind='function', name='add'); t.enabled = True; t.save()\n",
                extra_env=a.redis_env,
            )
            for _, reader in opened:
                methods = set()
                while "notifications/tools/list_changed" not in methods:
                    methods.add((await next_event(reader)).json()["method"])
        finally:
            for context, _ in opened:
                await context.__aexit__(None, None, None)
