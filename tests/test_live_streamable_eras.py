"""The official Python SDK against a live Daphne server, negotiating each stateful revision.

The SDK always offers its newest handshake revision; to make it negotiate an older one the test
patches the version it offers (the server answers with the client's version when it speaks it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mcp.types as types
import pytest
from mcp import Client

from tests.live import LiveDatabase, LiveServer, wait_for_call_log

pytestmark = pytest.mark.live

VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("mcp.client.session.LATEST_HANDSHAKE_VERSION", request.param)
    return str(request.param)


async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled<{prompt}>"), model="test-model"
    )


async def elicitation(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"count": 4})


def client(server: LiveServer, **kwargs: Any) -> Client:
    return Client(server.mcp_url, mode="legacy", sampling_callback=sampling, elicitation_callback=elicitation, **kwargs)


async def test_list_and_call(daphne_server: LiveServer, version: str) -> None:
    async with client(daphne_server) as c:
        assert c.protocol_version == version
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"echo", "slow_echo", "summarize", "plan_reading"} <= names
        result = await c.call_tool("echo", {"text": f"hi {version}"})
        assert result.content[0].text == f"hi {version}"  # type: ignore[union-attr]


async def test_progress_arrives_before_the_result(daphne_server: LiveServer, version: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(time.monotonic())

    async with client(daphne_server) as c:
        result = await c.call_tool("slow_echo", {"text": "done", "seconds": 0.5}, progress_callback=on_progress)
        finished = time.monotonic()
    assert result.content[0].text == "done"  # type: ignore[union-attr]
    assert len(seen) == 5
    # Streamed as emitted: the first arrives long before the result, not in one burst at the end.
    assert seen[0] < finished - 0.3


async def test_sampling_answered_by_the_client(daphne_server: LiveServer, version: str) -> None:
    async with client(daphne_server) as c:
        result = await c.call_tool("summarize", {"text": "a long story"})
    assert result.content[0].text == "Summary: sampled<Summarise in one sentence: a long story>"  # type: ignore[union-attr]


async def test_elicitation_answered_by_the_client(daphne_server: LiveServer, version: str) -> None:
    if version == "2025-03-26":
        pytest.skip("elicitation was added in 2025-06-18")
    async with client(daphne_server) as c:
        result = await c.call_tool("plan_reading", {"topic": "owls"})
    assert result.content[0].text == "Plan: read 4 books about owls."  # type: ignore[union-attr]


async def test_cancellation_stops_the_tool(daphne_server: LiveServer, live_db: LiveDatabase, version: str) -> None:
    marker = f"cancel-me-{version}-{time.time_ns()}"
    started = asyncio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with client(daphne_server) as c:
        call = asyncio.ensure_future(
            c.call_tool("slow_echo", {"text": marker, "seconds": 20}, progress_callback=on_progress)
        )
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The session still works after the cancellation.
        assert (await c.call_tool("echo", {"text": "after"})).content[0].text == "after"  # type: ignore[union-attr]
    outcome = await wait_for_call_log(live_db, marker)
    assert outcome == "cancelled"

