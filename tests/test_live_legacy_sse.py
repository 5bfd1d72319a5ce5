"""The legacy HTTP+SSE transport (2024-11-05) against a live Daphne server, with the official
Python SDK's SSE client, the TypeScript SDK's SSEClientTransport, and raw HTTP for the edges."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.conformance_runner import NODE_BIN, NODE_DIR
from tests.live import IN_CI, ROOT, LiveDatabase, LiveServer, wait_for_call_log
from tests.sse_client import events, next_event

pytestmark = pytest.mark.live


async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="py-sampled"), model="test-model"
    )


@pytest.mark.parametrize("version", ["2024-11-05", "2025-11-25"])
async def test_python_sdk_sse_client(daphne_server: LiveServer, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcp.client.session.LATEST_HANDSHAKE_VERSION", version)
    progress_at: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progress_at.append(time.monotonic())

    transport = sse_client(f"{daphne_server.url}/mcp/sse")
    async with Client(transport, mode="legacy", sampling_callback=sampling) as client:
        assert client.protocol_version == version
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "slow_echo", "summarize"} <= names
        assert (await client.call_tool("echo", {"text": "over sse"})).content[0].text == "over sse"  # type: ignore[union-attr]
        result = await client.call_tool("slow_echo", {"text": "s", "seconds": 0.5}, progress_callback=on_progress)
        finished = time.monotonic()
        assert result.content[0].text == "s"  # type: ignore[union-attr]
        assert len(progress_at) == 5 and progress_at[0] < finished - 0.3
        summary = await client.call_tool("summarize", {"text": "t"})
        assert summary.content[0].text == "Summary: py-sampled"  # type: ignore[union-attr]


def node_or_skip() -> None:
    if not (NODE_BIN / "node").exists():
        if IN_CI:
            pytest.fail("Node 22 is not installed in .cache/node (make node)")
        pytest.skip("Node 22 not installed in .cache/node: run `make node`")


async def test_typescript_sdk_sse_client_transport(daphne_server: LiveServer) -> None:
    node_or_skip()
    script = NODE_DIR / "sse_client.mjs"
    shutil.copy(ROOT / "tests" / "node" / "sse_client.mjs", script)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(NODE_BIN / "node"), str(script), f"{daphne_server.url}/mcp/sse"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["serverName"] == "mcp_sse demo"
    assert "echo" in out["tools"]
    assert out["echo"] == "from typescript"
    assert out["slow"] == "slow"
    # The server sends 5; the TS SDK may drop the last one, which it receives right before the
    # result (it unregisters the progress handler when the response is dispatched).
    assert len(out["progressTimes"]) >= 4 and out["progressTimes"][0] < out["slowDone"] - 300
    assert out["sampling"] == "Summary: ts-sampled<Summarise in one sentence: ts story>"


async def open_stream(http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> Any:
    return http.stream("GET", url, headers={"accept": "text/event-stream", **(headers or {})})


class TestEdges:
    async def test_endpoint_event_headers_and_keepalive_setting(self, daphne_server: LiveServer) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            async with await open_stream(http, f"{daphne_server.url}/mcp/sse") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert stream.headers["cache-control"].startswith("no-cache")
                assert stream.headers["x-accel-buffering"] == "no"
                reader = events(stream)
                first = await next_event(reader)
                assert first.event == "endpoint"
                assert first.data.startswith("/mcp/messages?session_id=")
                assert len(first.data.split("=", 1)[1]) >= 32  # random, URL-safe

    async def test_post_errors(self, daphne_server: LiveServer) -> None:
        messages = f"{daphne_server.url}/mcp/messages"
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with httpx.AsyncClient(timeout=10) as http:
            # missing session id -> 400; unknown -> 404; GET on the message path -> 405
            assert (await http.post(messages, json=ping)).status_code == 400
            assert (await http.post(messages + "?session_id=unknown", json=ping)).status_code == 404
            not_allowed = await http.get(messages + "?session_id=x")
            assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "POST"
            async with await open_stream(http, f"{daphne_server.url}/mcp/sse") as stream:
                reader = events(stream)  # keep a reference: closing the reader closes the stream
                endpoint = (await next_event(reader)).data
                url = daphne_server.url + endpoint
                bad_json = await http.post(url, content=b"{nope", headers={"content-type": "application/json"})
                assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == -32700
                bad_type = await http.post(url, content=b"{}", headers={"content-type": "text/plain"})
                assert bad_type.status_code == 415
                invalid = await http.post(url, json={"jsonrpc": "2.0", "id": 1})
                assert invalid.status_code == 400 and invalid.json()["error"]["code"] == -32600
                accepted = await http.post(url, json=ping)
                assert accepted.status_code == 202

    async def test_disconnect_ends_session_and_cancels_tools(
        self, daphne_server: LiveServer, live_db: LiveDatabase
    ) -> None:
        marker = f"legacy-cancel-{time.time_ns()}"
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "slow_echo",
                "arguments": {"text": marker, "seconds": 30},
                "_meta": {"progressToken": 1},
            },
        }
        async with httpx.AsyncClient(timeout=10) as http:
            async with await open_stream(http, f"{daphne_server.url}/mcp/sse") as stream:
                reader = events(stream)
                url = daphne_server.url + (await next_event(reader)).data
                assert (await http.post(url, json=init)).status_code == 202
                assert (await next_event(reader)).json()["id"] == 1
                assert (await http.post(url, json=call)).status_code == 202
                assert (await next_event(reader)).json()["method"] == "notifications/progress"
            # The stream is gone: the session ended and the running tool was cancelled.
            deadline = time.monotonic() + 10
            while (await http.post(url, json={"jsonrpc": "2.0", "id": 3, "method": "ping"})).status_code != 404:
                assert time.monotonic() < deadline, "the session outlived its stream"
                await asyncio.sleep(0.1)
        assert await wait_for_call_log(live_db, marker) == "cancelled"


async def test_auth_on_get_and_every_post(server_factory: Any, live_db: LiveDatabase) -> None:
    server = server_factory(extra_env={"MCP_REQUIRE_AUTH": "1"})
    live_db.create_user("sse-user")
    token = live_db.create_token("sse-user")
    other = live_db.create_token("sse-user")
    async with httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.get(f"{server.url}/mcp/sse", headers={"accept": "text/event-stream"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.get(f"{server.url}/mcp/sse", headers={"accept": "text/event-stream", "x-api-key": "bad"})
        assert wrong.status_code == 401
        async with await open_stream(http, f"{server.url}/mcp/sse", {"x-api-key": token}) as stream:
            reader = events(stream)
            url = server.url + (await next_event(reader)).data
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            assert (await http.post(url, json=ping)).status_code == 401  # no credentials on the POST
            # Another token of the same user is another principal: the session is not found.
            assert (await http.post(url, json=ping, headers={"authorization": f"Bearer {other}"})).status_code == 404
            assert (await http.post(url, json=ping, headers={"authorization": f"Bearer {token}"})).status_code == 202
            assert (await next_event(reader)).json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_server_shutdown_ends_streams_cleanly(server_factory: Any) -> None:
    """A deploy (SIGTERM) ends open streams with a proper end of body, not a truncated response."""
    server = server_factory()
    async with httpx.AsyncClient(timeout=10) as http:
        async with await open_stream(http, f"{server.url}/mcp/sse") as stream:
            reader = events(stream)
            assert (await next_event(reader)).event == "endpoint"
            server.process.terminate()
            leftovers = [event async for event in reader]  # ends without RemoteProtocolError
            assert leftovers == []
    assert server.process.wait(10) == 0
