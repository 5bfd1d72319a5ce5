"""The call log is written off the call path, in batches, and loses nothing on a normal shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.live import LiveDatabase

pytestmark = pytest.mark.live

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_buffered_entries_are_written_when_the_server_stops(server_factory: Any, live_db: LiveDatabase) -> None:
    server = server_factory()
    marker = f"shutdown-{time.time_ns()}"
    async with httpx.AsyncClient(timeout=10) as http:
        init = await http.post(
            server.mcp_url,
            headers=HEADERS,
            json={
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
            },
        )
        headers = {**HEADERS, "mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        calls = [
            http.post(
                server.mcp_url,
                headers=headers,
                json={"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": marker}}},
            )
            for n in range(1, 26)
        ]
        for response in await asyncio.gather(*calls):
            assert response.status_code == 200
    # Stop at once: the last entries are still in the recorder's buffer (it writes every 0.1 s).
    server.process.terminate()
    assert server.process.wait(15) == 0
    count = live_db.shell(
        f"from mcp_sse.models import CallLog; print(CallLog.objects.filter(tool='echo', arguments__text={marker!r}).count())"
    )
    assert int(count.strip()) == 25
