"""A worker stopped with SIGTERM mid-call (every deploy does it): ``python -m mcp_sse.daphne_server``
processes sharing Redis, with a short ``DRAIN_SECONDS``.

The stopping worker answers new requests 503 + Retry-After, lets a short call finish and
delivers it, cuts a long call off at the drain time with an error to its client and a call log
row saying so, sends 2025-11-25 clients to poll (they resume on the other worker and get their
result there), ends its streams, and exits 0 within the drain time plus a small margin.
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

from tests.live import LiveDatabase, LiveServer
from tests.sse_client import events, response_to
from tests.test_multiworker_streamable import HEADERS, session_headers
from tests.test_multiworker_streamable import initialize as initialize_session

pytestmark = [pytest.mark.live, pytest.mark.redis]

DRAIN_SECONDS = 3.0
# Exit after the drain: the cut calls' errors (CUT_GRACE at most), the call log flush, Twisted.
EXIT_MARGIN = 3.0


@pytest.fixture
def start_worker(redis_url: str, server_factory: Callable[..., LiveServer]) -> Callable[[str], LiveServer]:
    """Start workers of one deployment (one Redis prefix, DRAIN_SECONDS) with a given server."""
    prefix = uuid.uuid4().hex[:8]
    env = {"MCP_DRAIN_SECONDS": str(DRAIN_SECONDS), "MCP_LEASE_SECONDS": "2"}

    def start(server: str) -> LiveServer:
        return server_factory(redis_url=redis_url, redis_prefix=prefix, extra_env=env, server=server)

    return start


@pytest.fixture
def drain_pair(start_worker: Callable[[str], LiveServer]) -> tuple[LiveServer, LiveServer]:
    return start_worker("mcp-daphne"), start_worker("mcp-daphne")


async def initialize(http: httpx.AsyncClient, server: LiveServer, version: str) -> dict[str, str]:
    """A new session on ``server``; the headers of its later requests."""
    return session_headers(await initialize_session(http, server, {}, version), version)


def slow_echo(request_id: int, text: str, seconds: float, *, progress: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "slow_echo", "arguments": {"text": text, "seconds": seconds}}
    if progress:
        params["_meta"] = {"progressToken": f"p{request_id}"}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def answer_of(http: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC response to ``body`` (a JSON body, or the response event of an SSE one)."""
    async with http.stream("POST", url, headers=headers, json=body) as response:
        assert response.status_code == 200, await response.aread()
        if response.headers["content-type"].startswith("application/json"):
            await response.aread()
            return dict(response.json())
        found = await response_to(events(response), body["id"])
    assert found is not None, f"no response to request {body['id']}"
    return found[0]


def stop(server: LiveServer) -> float:
    os.kill(server.process.pid, signal.SIGTERM)
    return time.monotonic()


async def wait_exit(server: LiveServer, timeout: float) -> tuple[int | None, float]:
    """The exit code and the moment of exit (None: still running after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            return code, time.monotonic()
        await asyncio.sleep(0.05)
    return None, time.monotonic()


async def call_log_row(db: LiveDatabase, marker: str, timeout: float = 15) -> tuple[str, str]:
    """(outcome, error) of the call log row of the call whose ``text`` argument is ``marker``."""
    code = (
        "from mcp_sse.models import CallLog\n"
        f"row = CallLog.objects.filter(arguments__text={marker!r}).first()\n"
        "print(f'{row.outcome}|{row.error}' if row else '')"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = (await asyncio.to_thread(db.shell, code)).strip()
        if found:
            outcome, _, error = found.partition("|")
            return outcome, error
        await asyncio.sleep(0.2)
    raise AssertionError(f"no call log row for {marker}")


# uvicorn re-raises the signal once it has stopped (since 0.29): it then exits by SIGTERM.
EXIT_CODES = {"mcp-daphne": {0}, "daphne": {0}, "uvicorn": {0, -signal.SIGTERM}}


@pytest.mark.parametrize("server", ["mcp-daphne", "daphne", "uvicorn"])
async def test_sigterm_mid_call_drains_then_exits(
    server: str, start_worker: Callable[[str], LiveServer], live_db: LiveDatabase
) -> None:
    """The same under ``python -m mcp_sse.daphne_server`` (installed as the reactor starts),
    plain ``daphne`` (installed by the first request) and uvicorn (the ASGI lifespan)."""
    a = start_worker(server)
    short_text, long_text = f"short-{uuid.uuid4().hex[:8]}", f"long-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(20, read=40)) as http:
        # 2025-06-18: no polling, the answers come on the connections the calls were made on.
        headers = await initialize(http, a, "2025-06-18")
        short = asyncio.ensure_future(answer_of(http, a.mcp_url, headers, slow_echo(1, short_text, 1.5)))
        long = asyncio.ensure_future(answer_of(http, a.mcp_url, headers, slow_echo(2, long_text, 30, progress=True)))
        await asyncio.sleep(0.5)  # both running
        stopped = stop(a)

        # New work during the drain: 503 + Retry-After (a new session, and a call on this one).
        await asyncio.sleep(0.3)
        fresh = await http.post(
            a.mcp_url, headers=HEADERS, json={"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {}}
        )
        assert fresh.status_code == 503 and fresh.headers["retry-after"] == "1", fresh.text
        another = await http.post(a.mcp_url, headers=headers, json=slow_echo(3, "refused", 0.1))
        assert another.status_code == 503 and another.json()["id"] == 3
        legacy = await http.get(f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"})
        assert legacy.status_code == 503
        refused_at = time.monotonic() - stopped

        delivered = await short
        delivered_at = time.monotonic() - stopped
        assert delivered["result"]["content"][0]["text"] == short_text

        cut = await long
        cut_at = time.monotonic() - stopped
        assert cut["error"]["code"] == -32603 and cut["error"]["data"] == {"reason": "shutdown"}, cut
        assert "shut down" in cut["error"]["message"]
        assert DRAIN_SECONDS - 0.5 <= cut_at <= DRAIN_SECONDS + 2, f"cut off {cut_at:.2f} s after SIGTERM"

        code, exited = await wait_exit(a, DRAIN_SECONDS + EXIT_MARGIN + 5)
        assert code in EXIT_CODES[server], f"exit code {code}"
        exit_at = exited - stopped
        assert exit_at <= DRAIN_SECONDS + EXIT_MARGIN, f"exited {exit_at:.2f} s after SIGTERM"

    # The call log: the short call ok, the long one cut off and saying so (flushed before exit).
    assert (await call_log_row(live_db, short_text))[0] == "ok"
    outcome, error = await call_log_row(live_db, long_text)
    assert outcome == "cancelled" and "shut down" in error and f"{DRAIN_SECONDS:g} s drain" in error, (outcome, error)
    print(
        f"{server}: SIGTERM (DRAIN_SECONDS={DRAIN_SECONDS:g}): 503s checked by {refused_at:.2f} s, short call delivered at "
        f"{delivered_at:.2f} s, long call cut at {cut_at:.2f} s, exit {code} at {exit_at:.2f} s"
    )


async def test_sigterm_sends_a_2025_11_25_stream_to_poll_and_its_result_arrives_on_the_other_worker(
    drain_pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = drain_pair
    async with httpx.AsyncClient(timeout=httpx.Timeout(20, read=40)) as http:
        headers = await initialize(http, a, "2025-11-25")
        get_headers = {k: v for k, v in headers.items() if k != "content-type"} | {"accept": "text/event-stream"}
        async with (
            http.stream("GET", a.mcp_url, headers=get_headers) as standalone,
            http.stream("POST", a.mcp_url, headers=headers, json=slow_echo(7, "polled", 2, progress=True)) as post,
        ):
            get_reader, post_reader = events(standalone), events(post)
            assert (await anext(get_reader)).id  # the GET stream's priming event
            last_id = (await anext(post_reader)).id  # the POST stream's priming event
            stopped = stop(a)
            # Both streams end with a reconnection hint (retry:), the POST one before its result.
            post_tail = [event async for event in post_reader]
            get_tail = [event async for event in get_reader]
            ended_at = time.monotonic() - stopped
        assert post_tail and post_tail[-1].retry is not None and post_tail[-1].data == ""
        assert all(event.json().get("id") != 7 for event in post_tail if event.data)  # no result here
        last_id = next((e.id for e in reversed(post_tail) if e.id), last_id)
        assert get_tail and get_tail[-1].retry is not None
        # The client polls: its GET lands on B, which replays the stored events and hears the
        # rest from A (still running the call while it drains).
        resume = {**get_headers, "last-event-id": last_id}
        async with http.stream("GET", b.mcp_url, headers=resume) as resumed:
            assert resumed.status_code == 200
            found = await response_to(events(resumed), 7)
        result_at = time.monotonic() - stopped
        assert found is not None and found[0]["result"]["content"][0]["text"] == "polled", found
        code, exited = await wait_exit(a, DRAIN_SECONDS + EXIT_MARGIN + 5)
        assert code == 0
        print(
            f"SIGTERM: streams ended with retry: after {ended_at:.2f} s, the result reached the client "
            f"through B after {result_at:.2f} s, A exited 0 after {exited - stopped:.2f} s"
        )


async def test_sigterm_ends_a_legacy_stream_after_its_call_is_answered(
    drain_pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = drain_pair
    async with httpx.AsyncClient(timeout=httpx.Timeout(20, read=40)) as http:
        async with http.stream("GET", f"{a.url}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            reader = events(stream)
            endpoint = (await anext(reader)).data
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "d", "version": "1"}},
            }
            assert (await http.post(a.url + endpoint, json=init)).status_code == 202
            assert (await anext(reader)).json()["id"] == 0
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(a.url + endpoint, json=note)).status_code == 202
            assert (await http.post(a.url + endpoint, json=slow_echo(1, "legacy", 1.5))).status_code == 202
            await asyncio.sleep(0.3)
            stopped = stop(a)
            await asyncio.sleep(0.3)
            refused = await http.post(a.url + endpoint, json=slow_echo(2, "late", 0.1))
            assert refused.status_code == 503
            # Posted through B, which forwards it to A's stream: refused there, on the stream.
            assert (await http.post(b.url + endpoint, json=slow_echo(3, "late", 0.1))).status_code == 202
            rest = [event.json() for event in [e async for e in reader] if event.data]
            ended_at = time.monotonic() - stopped
        assert [m.get("id") for m in rest] == [3, 1], rest
        assert rest[0]["error"]["data"] == {"reason": "shutdown"}
        assert rest[1]["result"]["content"][0]["text"] == "legacy"
        code, exited = await wait_exit(a, DRAIN_SECONDS + EXIT_MARGIN + 5)
        assert code == 0
        print(f"SIGTERM: legacy call answered and stream ended {ended_at:.2f} s after, exit 0 after {exited - stopped:.2f} s")
