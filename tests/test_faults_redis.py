"""Redis stops and comes back under two Daphne workers (a private redis-server of the test's).

During the outage every request gets an answer, never a hang or a 500: session and stream work
gets 503 with ``Retry-After`` (a JSON-RPC error body), held streams end so that their clients
reconnect, and 2026-07-28 calls, which need nothing shared, go on being served (visibility and
tokens fall back to the database). Once Redis is back every worker serves again within seconds,
without a restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, PrivateRedis
from tests.sse_client import events, next_event
from tests.test_multiworker_stateless import call as call_2026
from tests.test_multiworker_streamable import HEADERS, VERSION, initialize, session_headers

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture
def outage_pair(
    private_redis: PrivateRedis, server_factory: Callable[..., LiveServer]
) -> tuple[LiveServer, LiveServer]:
    prefix = uuid.uuid4().hex[:8]
    return (
        server_factory(redis_url=private_redis.url, redis_prefix=prefix),
        server_factory(redis_url=private_redis.url, redis_prefix=prefix),
    )


def init_body(version: str = VERSION) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "outage", "version": "1"}},
    }


def echo_call(request_id: int, text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["code"] == -32603 and error["data"] == {"reason": "unavailable"}


async def legacy_round_trip(http: httpx.AsyncClient, server: LiveServer, post_to: LiveServer) -> None:
    """A whole legacy session: stream on ``server``, initialize and one call POSTed to ``post_to``."""
    async with http.stream("GET", f"{server.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        reader = events(stream)
        post_url = post_to.url + (await next_event(reader)).data
        assert (await http.post(post_url, json={**init_body("2024-11-05"), "id": 1})).status_code == 202
        assert (await next_event(reader)).json()["id"] == 1
        assert (
            await http.post(post_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        ).status_code == 202
        assert (await http.post(post_url, json=echo_call(2, "legacy"))).status_code == 202
        assert (await next_event(reader)).json()["result"]["content"][0]["text"] == "legacy"


async def streamable_round_trip(http: httpx.AsyncClient, server: LiveServer, call_on: LiveServer) -> None:
    session = await initialize(http, server)
    reply = await http.post(call_on.mcp_url, headers=session_headers(session), json=echo_call(3, "streamable"))
    assert reply.status_code == 200, reply.text
    assert "streamable" in reply.text


async def test_during_an_outage_every_request_is_answered_503_or_served_and_streams_end(
    outage_pair: tuple[LiveServer, LiveServer], private_redis: PrivateRedis
) -> None:
    a, b = outage_pair
    async with httpx.AsyncClient(timeout=10) as http:
        session = await initialize(http, a)
        # Streams held across the outage: a legacy /sse stream and a session's GET stream.
        async with (
            http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as legacy,
            http.stream("GET", b.mcp_url, headers=session_headers(session)) as get_stream,
        ):
            legacy_events = events(legacy)
            endpoint = (await next_event(legacy_events)).data
            assert get_stream.status_code == 200

            private_redis.stop()
            began = time.monotonic()
            # New work that needs the shared store: 503 + Retry-After with a JSON-RPC error body.
            assert_unavailable(await http.post(a.mcp_url, headers=HEADERS, json=init_body()))  # initialize
            assert_unavailable(await http.post(b.mcp_url, headers=session_headers(session), json=echo_call(5, "x")))
            assert_unavailable(await http.get(f"{b.url}/mcp/sse", headers={"accept": "text/event-stream"}))
            assert_unavailable(await http.post(b.url + endpoint, json=init_body("2024-11-05")))  # legacy POST
            # 2026-07-28 needs nothing shared: served on both workers, visibility and tokens from the DB.
            for worker in (a, b):
                reply = await call_2026(worker, "echo", {"text": "stateless"})
                assert reply["result"]["content"][0]["text"] == "stateless"
            answered = time.monotonic() - began

            # The held streams end (their clients reconnect) instead of staying open and deaf.
            async def until_end(iterator: Any) -> None:
                async for _ in iterator:
                    pass

            await asyncio.wait_for(until_end(legacy_events), 10)
            await asyncio.wait_for(until_end(get_stream.aiter_bytes()), 10)
            ended = time.monotonic() - began
    print(f"outage: 6 requests answered in {answered:.2f} s; held streams ended {ended:.2f} s into it")
    for worker in (a, b):
        assert "Task exception was never retrieved" not in worker.log()
        assert "unhandled error" not in worker.log()


async def test_every_worker_serves_again_soon_after_redis_returns(
    outage_pair: tuple[LiveServer, LiveServer], private_redis: PrivateRedis
) -> None:
    a, b = outage_pair
    async with httpx.AsyncClient(timeout=10) as http:
        # Fill both workers' pools (store and channel layer) with connections the restart kills.
        await streamable_round_trip(http, a, b)
        await legacy_round_trip(http, b, a)
        private_redis.stop()
        await asyncio.sleep(1)
        private_redis.start()
        back = time.monotonic()
        # Every request after the restart succeeds: no "Connection closed by server" per pooled
        # connection (they are health-checked and retried on a new connection).
        for _ in range(3):
            await streamable_round_trip(http, a, b)
            await streamable_round_trip(http, b, a)
            await legacy_round_trip(http, a, b)
            await legacy_round_trip(http, b, a)
        took = time.monotonic() - back
    print(f"after the restart: 12 sessions across both workers served, all first time, in {took:.2f} s")
    assert took < 15
