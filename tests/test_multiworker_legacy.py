"""Legacy HTTP+SSE across two Daphne processes on Redis: the stream is held by A, every POST
goes to B, and every reply arrives on A's stream, in order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.sse_client import events, next_event

pytestmark = [pytest.mark.live, pytest.mark.redis]


def initialize_request(capabilities: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": capabilities,
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


async def test_posts_to_b_reach_the_stream_on_a_in_order(redis_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=15) as http:
        async with http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            reader = events(stream)
            endpoint = (await next_event(reader)).data
            post_url = b.url + endpoint  # the POSTs go to the other process
            init = initialize_request({"sampling": {}})
            assert (await http.post(post_url, json=init)).status_code == 202
            assert (await next_event(reader)).json()["result"]["protocolVersion"] == "2024-11-05"
            assert (
                await http.post(post_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            ).status_code == 202
            # Pipelined requests: all POSTed to B before reading anything from A.
            for n in range(1, 21):
                request = (
                    {"jsonrpc": "2.0", "id": n, "method": "ping"}
                    if n % 2
                    else {"jsonrpc": "2.0", "id": n, "method": "tools/list"}
                )
                assert (await http.post(post_url, json=request)).status_code == 202
            ids = [(await next_event(reader)).json()["id"] for _ in range(20)]
            assert ids == list(range(1, 21))
            # A server-to-client request from the tool on A, answered by a POST to B.
            call = {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "tools/call",
                "params": {"name": "summarize", "arguments": {"text": "z"}},
            }
            assert (await http.post(post_url, json=call)).status_code == 202
            question = (await next_event(reader)).json()
            assert question["method"] == "sampling/createMessage"
            answer = {
                "jsonrpc": "2.0",
                "id": question["id"],
                "result": {"role": "assistant", "content": {"type": "text", "text": "via B"}, "model": "m"},
            }
            assert (await http.post(post_url, json=answer)).status_code == 202
            result = (await next_event(reader)).json()
            assert result["id"] == 99 and result["result"]["content"][0]["text"] == "Summary: via B"


async def test_session_changes_posted_to_b_apply_to_the_next_call_on_a(
    redis_pair: tuple[LiveServer, LiveServer],
) -> None:
    """logging/setLevel POSTed to B is served on A (the stream's worker) and the very next call
    honours it: the stream's consumer keeps the session current itself, without re-reading it
    from the store for every request. Pipelined: both POSTs before reading any reply."""
    a, b = redis_pair
    async with httpx.AsyncClient(timeout=15) as http:
        async with http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            reader = events(stream)
            post_url = b.url + (await next_event(reader)).data
            init = initialize_request({})
            assert (await http.post(post_url, json=init)).status_code == 202
            assert (await next_event(reader)).json()["id"] == 0
            report = {"name": "library_report", "arguments": {"sections": 1}}
            for level, call_id in (("error", 2), ("info", 4)):
                set_level = {
                    "jsonrpc": "2.0",
                    "id": call_id - 1,
                    "method": "logging/setLevel",
                    "params": {"level": level},
                }
                call = {"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": report}
                assert (await http.post(post_url, json=set_level)).status_code == 202
                assert (await http.post(post_url, json=call)).status_code == 202
                seen = []
                while True:
                    message = (await next_event(reader)).json()
                    seen.append(message.get("method") or message.get("id"))
                    if message.get("id") == call_id:
                        break
                # At "error" the tool's info line is filtered out; at "info" it arrives.
                assert ("notifications/message" in seen) is (level == "info"), seen


async def test_a_post_to_the_streams_own_worker_does_not_go_through_redis(
    redis_pair: tuple[LiveServer, LiveServer], redis_url: str
) -> None:
    """Watched with Redis MONITOR: a POST that lands on the worker holding the stream reaches it
    without a message in Redis (mcp_sse.layers.RedisChannelLayer delivers it in-process); the
    same POST to the other worker is queued in the stream worker's Redis inbox (ZADD), as
    channels-redis does for every message."""
    import asyncio
    import uuid

    import redis.asyncio

    a, b = redis_pair
    inbox = f"{a.redis_env['MCP_LAYER_PREFIX']}specific."
    watcher = redis.asyncio.Redis.from_url(redis_url)
    seen: list[str] = []
    markers: dict[str, asyncio.Event] = {}
    monitoring = asyncio.Event()

    async def watch() -> None:
        async with watcher.monitor() as monitor:
            monitoring.set()
            while True:
                line = str((await monitor.next_command())["command"])
                seen.append(line)
                for marker, reached in markers.items():
                    if marker in line:
                        reached.set()

    async def commands_until_now() -> list[str]:
        """What Redis executed up to now (MONITOR reports in execution order: wait for a marker)."""
        marker = f"mark-{uuid.uuid4().hex}"
        reached = markers[marker] = asyncio.Event()
        await watcher.echo(marker)
        await asyncio.wait_for(reached.wait(), 15)
        taken = list(seen)
        seen.clear()
        return taken

    watching = asyncio.ensure_future(watch())
    try:
        await asyncio.wait_for(monitoring.wait(), 15)
        async with httpx.AsyncClient(timeout=15) as http:
            async with http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
                reader = events(stream)
                endpoint = (await next_event(reader)).data
                await commands_until_now()
                assert (await http.post(a.url + endpoint, json=initialize_request({}))).status_code == 202
                assert (await next_event(reader)).json()["id"] == 0
                local = [c for c in await commands_until_now() if inbox in c and c.startswith("ZADD")]
                assert local == []  # same worker: nothing queued in Redis
                ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                assert (await http.post(b.url + endpoint, json=ping)).status_code == 202
                assert (await next_event(reader)).json()["id"] == 1
                remote = [c for c in await commands_until_now() if inbox in c and "ZADD" in c]
                assert remote, "the POST to the other worker should travel through Redis"
    finally:
        watching.cancel()
        await watcher.aclose()
