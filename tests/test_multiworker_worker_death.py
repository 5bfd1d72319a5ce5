"""A worker killed (``kill -9``) mid-call, with two Daphne processes sharing Redis.

The producer of a stream holds a lease in the shared store (``LEASE_SECONDS``, small here): a
client that resumes the stream on the surviving worker gets an error for its request once the
lease has expired, instead of keep-alives for ever; a legacy POST to a session whose stream was
on the dead worker gets 404 (the client reconnects) instead of 202 and silence; the session's
one GET stream slot frees itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.sse_client import events, next_event, response_to
from tests.test_multiworker_streamable import initialize, session_headers

pytestmark = [pytest.mark.live, pytest.mark.redis]

LEASE_SECONDS = 2.0
VERSION = "2025-11-25"


@pytest.fixture
def lease_pair(redis_url: str, server_factory: Callable[..., LiveServer]) -> tuple[LiveServer, LiveServer]:
    """Two Daphne workers on their own Redis prefix, with a 2 s lease."""
    prefix = uuid.uuid4().hex[:8]
    env = {"MCP_LEASE_SECONDS": str(LEASE_SECONDS)}
    return (
        server_factory(redis_url=redis_url, redis_prefix=prefix, extra_env=env),
        server_factory(redis_url=redis_url, redis_prefix=prefix, extra_env=env),
    )


def kill(server: LiveServer) -> float:
    """``kill -9`` the server; the moment it is dead."""
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    return time.monotonic()


def slow_call(request_id: int, seconds: float) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": "slow_echo",
            "arguments": {"text": "never", "seconds": seconds},
            "_meta": {"progressToken": "p"},
        },
    }


async def test_a_resume_on_b_of_a_stream_whose_worker_was_killed_ends_with_an_error(
    lease_pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = lease_pair
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=30)) as http:
        session = await initialize(http, a)
        last_id = None
        async with http.stream("POST", a.mcp_url, headers=session_headers(session), json=slow_call(5, 50)) as stream:
            reader = events(stream)
            for _ in range(2):  # the priming event and the first progress notification
                last_id = (await asyncio.wait_for(anext(reader), 10)).id
        assert last_id is not None
        killed = kill(a)
        resume = {**session_headers(session), "accept": "text/event-stream", "last-event-id": last_id}
        async with http.stream("GET", b.mcp_url, headers=resume) as resumed:
            assert resumed.status_code == 200
            found = await response_to(events(resumed), 5)
        waited = time.monotonic() - killed
        assert found is not None
        answer, answer_event = found
        assert answer["error"]["code"] == -32603, answer
        assert answer["error"]["data"] == {"reason": "worker-lost"}
        assert waited <= LEASE_SECONDS + 2, f"the error came {waited:.2f} s after kill -9 (lease {LEASE_SECONDS} s)"
        print(f"resumed stream ended with worker-lost {waited:.2f} s after kill -9 (lease {LEASE_SECONDS} s)")

        # The verdict is stored: a later resume from before it replays it at once and ends.
        started = time.monotonic()
        async with http.stream("GET", b.mcp_url, headers=resume) as again:
            replayed = [event.json() for event in [e async for e in events(again)] if event.data]
        assert replayed[-1] == answer and time.monotonic() - started < 2
        # Nothing after the verdict: resuming from it is an empty, ended stream.
        after = {**resume, "last-event-id": answer_event.id}
        async with http.stream("GET", b.mcp_url, headers=after) as nothing:
            assert [e async for e in events(nothing) if e.data] == []


async def test_a_resume_after_the_worker_finished_and_was_killed_gets_the_outcome(
    lease_pair: tuple[LiveServer, LiveServer],
) -> None:
    """What the dead worker stored before dying is the answer: the call's own outcome."""
    a, b = lease_pair
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=30)) as http:
        session = await initialize(http, a)
        call = slow_call(6, 0.5)
        call["params"]["arguments"]["text"] = "finished"
        async with http.stream("POST", a.mcp_url, headers=session_headers(session), json=call) as stream:
            first_id = (await asyncio.wait_for(anext(events(stream)), 10)).id  # the priming event
        await asyncio.sleep(1.5)  # the call finishes on A meanwhile, its events stored
        kill(a)
        resume = {**session_headers(session), "accept": "text/event-stream", "last-event-id": first_id}
        started = time.monotonic()
        async with http.stream("GET", b.mcp_url, headers=resume) as resumed:
            found = await response_to(events(resumed), 6)
        assert found is not None and found[0]["result"]["content"][0]["text"] == "finished", found
        assert time.monotonic() - started < 2  # no waiting for the lease: the stream had ended


async def test_a_legacy_post_for_a_stream_on_a_killed_worker_gets_404(
    lease_pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = lease_pair
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            reader = events(stream)  # held: a dropped reader closes the stream
            endpoint = (await next_event(reader)).data
            assert (await http.post(b.url + endpoint, json=ping)).status_code == 202  # alive: forwarded
            killed = kill(a)
        statuses: list[int] = []
        while True:
            status = (await http.post(b.url + endpoint, json=ping)).status_code
            statuses.append(status)
            if status != 202:
                break
            assert time.monotonic() - killed < LEASE_SECONDS + 3, "still 202 long after the lease"
            await asyncio.sleep(0.1)
        waited = time.monotonic() - killed
        assert status == 404, statuses
        assert waited <= LEASE_SECONDS + 1
        # The session is over for good (deleted), not just while the lease is checked.
        assert (await http.post(b.url + endpoint, json=ping)).status_code == 404
        print(f"legacy POST answered 404 {waited:.2f} s after kill -9 (lease {LEASE_SECONDS} s)")


async def test_the_get_stream_slot_of_a_killed_worker_frees_itself(lease_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = lease_pair
    async with httpx.AsyncClient(timeout=10) as http:
        session = await initialize(http, a)
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": VERSION}
        async with http.stream("GET", a.mcp_url, headers=get_headers) as held:
            assert held.status_code == 200
            reader = events(held)  # held: a dropped reader closes the stream
            await anext(reader)  # the priming event: the stream is open
            assert (await http.get(b.mcp_url, headers=get_headers)).status_code == 409  # one at a time
            killed = kill(a)
        while True:
            async with http.stream("GET", b.mcp_url, headers=get_headers) as retry:
                if retry.status_code == 200:
                    break
                assert retry.status_code == 409
            assert time.monotonic() - killed < LEASE_SECONDS + 3, "the GET slot stayed taken"
            await asyncio.sleep(0.1)
        waited = time.monotonic() - killed
        assert waited <= LEASE_SECONDS + 1
        print(f"a new GET stream opened on B {waited:.2f} s after kill -9 (lease {LEASE_SECONDS} s)")
