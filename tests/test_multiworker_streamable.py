"""Stateful Streamable HTTP across two Daphne processes sharing Redis (channel layer + cache)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.sse_client import events, next_event

pytestmark = [pytest.mark.live, pytest.mark.redis]

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
VERSION = "2025-11-25"


async def initialize(
    http: httpx.AsyncClient, server: LiveServer, capabilities: dict[str, Any] | None = None, version: str = VERSION
) -> str:
    response = await http.post(
        server.mcp_url,
        headers=HEADERS,
        json={
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities or {"sampling": {}},
                "clientInfo": {"name": "multiworker-test", "version": "1"},
            },
        },
    )
    assert response.status_code == 200
    session = response.headers["mcp-session-id"]
    headers = session_headers(session, version)
    done = await http.post(
        server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert done.status_code == 202
    return session


def session_headers(session: str, version: str = VERSION) -> dict[str, str]:
    return {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": version}


async def test_session_initialized_on_a_is_used_on_b(redis_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=10) as http:
        session = await initialize(http, a)
        response = await http.post(
            b.mcp_url,
            headers=session_headers(session),
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "on B"}},
            },
        )
        assert response.status_code == 200
        assert response.json()["result"]["content"][0]["text"] == "on B"
        # Ending the session on B ends it on A too.
        assert (await http.delete(b.mcp_url, headers=session_headers(session))).status_code == 200
        gone = await http.post(
            a.mcp_url, headers=session_headers(session), json={"jsonrpc": "2.0", "id": 2, "method": "ping"}
        )
        assert gone.status_code == 404


async def test_get_stream_on_a_receives_notification_caused_on_b(
    conformance_pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = conformance_pair
    async with httpx.AsyncClient(timeout=10) as http:
        session = await initialize(http, a)
        subscribe = await http.post(
            b.mcp_url,
            headers=session_headers(session),
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "resources/subscribe",
                "params": {"uri": "test://watched-resource"},
            },
        )
        assert subscribe.status_code == 200
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": VERSION}
        async with http.stream("GET", a.mcp_url, headers=get_headers) as stream:
            assert stream.status_code == 200
            reader = events(stream)
            primer = await asyncio.wait_for(anext(reader), 10)
            assert primer.data == "" and primer.id  # priming event of the GET stream
            trigger = await http.post(
                b.mcp_url,
                headers=session_headers(session),
                json={
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "test_trigger_resource_update"},
                },
            )
            assert trigger.status_code == 200
            note = (await next_event(reader)).json()
            assert note == {
                "jsonrpc": "2.0",
                "method": "notifications/resources/updated",
                "params": {"uri": "test://watched-resource"},
            }


async def test_sampling_answer_posted_to_b_resumes_tool_on_a(redis_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=15) as http:
        session = await initialize(http, a)
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "summarize", "arguments": {"text": "x"}},
        }
        async with http.stream("POST", a.mcp_url, headers=session_headers(session), json=call) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            reader = events(stream)
            question = (await next_event(reader)).json()
            assert question["method"] == "sampling/createMessage"
            answer = {
                "jsonrpc": "2.0",
                "id": question["id"],
                "result": {"role": "assistant", "content": {"type": "text", "text": "from B"}, "model": "m"},
            }
            posted = await http.post(b.mcp_url, headers=session_headers(session), json=answer)
            assert posted.status_code == 202
            result = (await next_event(reader)).json()
        assert result["id"] == 7
        assert result["result"]["content"][0]["text"] == "Summary: from B"


async def test_stream_dropped_on_a_is_resumed_on_b(redis_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=15) as http:
        session = await initialize(http, a)
        call = {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {
                "name": "slow_echo",
                "arguments": {"text": "resumed", "seconds": 1.5},
                "_meta": {"progressToken": "p"},
            },
        }
        last_id = None
        async with http.stream("POST", a.mcp_url, headers=session_headers(session), json=call) as stream:
            reader = events(stream)
            seen = 0
            while seen < 2:  # the priming event and the first progress notification
                event = await asyncio.wait_for(anext(reader), 10)
                last_id = event.id
                seen += 1
        # The connection to A is gone; the tool keeps running on A. Resume on B.
        assert last_id is not None
        get_headers = {
            "accept": "text/event-stream",
            "mcp-session-id": session,
            "mcp-protocol-version": VERSION,
            "last-event-id": last_id,
        }
        progress: list[float] = []
        result = None
        async with http.stream("GET", b.mcp_url, headers=get_headers) as resumed:
            assert resumed.status_code == 200
            async for event in events(resumed):
                message = event.json()
                if message.get("method") == "notifications/progress":
                    progress.append(message["params"]["progress"])
                elif message.get("id") == 9:
                    result = message
                    break
        assert result is not None and result["result"]["content"][0]["text"] == "resumed"
        assert progress == sorted(progress) and progress[-1] == 15
        assert 1 not in progress  # the event before Last-Event-ID is not replayed
