"""The demo served under ``opentelemetry-instrument --traces_exporter console``, the ecosystem's
standard set-up (opentelemetry-distro with the OTEL_* variables): a real Daphne process prints
the MCP server spans of a Streamable session, a legacy SSE session and a 2026-07-28 request,
each under the HTTP span of opentelemetry-instrumentation-asgi, and the duration metric."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import DEMO_SETTINGS, ROOT, LiveDatabase, free_port, wait_for_port
from tests.sse_client import events, next_event, response_to

pytestmark = pytest.mark.live

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
V2026 = "2026-07-28"


def instrument_command() -> str:
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("opentelemetry-instrument is not installed (pip install -e '.[dev]')")
        pytest.skip("opentelemetry-instrument is not installed")
    return found


def printed_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporters printed (pretty-printed, one after another)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


async def streamable_session(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        response = await http.post("/mcp", json=hello, headers=headers)
        assert response.status_code == 200, response.text
        session = response.headers["mcp-session-id"]
        headers = {**headers, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post("/mcp", json=note, headers=headers)).status_code == 202
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "traced"}, "_meta": {"traceparent": TRACEPARENT}},
        }
        assert "traced" in (await http.post("/mcp", json=call, headers=headers)).text
        search = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "search_books", "arguments": {"query": "a"}},
        }
        assert (await http.post("/mcp", json=search, headers=headers)).status_code == 200
        assert (await http.delete("/mcp", headers=headers)).status_code == 200
        modern = {
            "jsonrpc": "2.0",
            "id": "m-1",
            "method": "tools/call",
            "params": {
                "name": "add",
                "arguments": {"a": 1, "b": 2},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": V2026,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }
        modern_headers = {
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": V2026,
            "mcp-method": "tools/call",
            "mcp-name": "add",
        }
        assert (await http.post("/mcp", json=modern, headers=modern_headers)).status_code == 200
        return session


async def legacy_session(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        async with http.stream("GET", "/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            iterator = events(stream)
            endpoint = (await next_event(iterator)).data
            hello = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2024-11-05",
                    "capabilities": {},
                    "clientInfo": {"name": "l", "version": "1"},
                },
            }
            assert (await http.post(endpoint, json=hello)).status_code == 202
            assert await response_to(iterator, 1) is not None
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "old"}},
            }
            assert (await http.post(endpoint, json=call)).status_code == 202
            assert await response_to(iterator, 2) is not None


def test_the_demo_under_opentelemetry_instrument_prints_mcp_spans(live_db: LiveDatabase, tmp_path: Path) -> None:
    port = free_port()
    command = [
        instrument_command(),
        "--traces_exporter",
        "console",
        "--metrics_exporter",
        "console",
        "--logs_exporter",
        "none",
        "--service_name",
        "mcp-demo",
        sys.executable,
        "-m",
        "mcp_sse.daphne_server",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "demo_project.asgi:application",
    ]
    env = {
        **os.environ,
        **live_db.env,
        "DJANGO_SETTINGS_MODULE": DEMO_SETTINGS,
        "MCP_DRAIN_SECONDS": "2",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    env.pop("REDIS_URL", None)
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}"
        session = asyncio.run(streamable_session(base))
        asyncio.run(legacy_session(base))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    printed = printed_objects(out_path.read_text(errors="replace"))
    spans = [o for o in printed if "context" in o and "kind" in o]
    assert spans, err_path.read_text(errors="replace")[-3000:]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)

    echo_calls = by_name["tools/call echo"]
    assert len(echo_calls) == 2  # the Streamable one and the legacy one
    for span in echo_calls:
        assert span["kind"] == "SpanKind.SERVER"
        assert span["attributes"]["mcp.method.name"] == "tools/call"
        assert span["attributes"]["gen_ai.operation.name"] == "execute_tool"
        assert span["attributes"]["client.address"] == "127.0.0.1"
        assert span["resource"]["attributes"]["service.name"] == "mcp-demo"
    streamable = next(s for s in echo_calls if s["attributes"].get("mcp.session.id") == session)
    # Its parent is the client's span from _meta; the HTTP span of the POST is linked.
    assert streamable["context"]["trace_id"] == "0x" + TRACEPARENT.split("-")[1]
    assert streamable["parent_id"] == "0x" + TRACEPARENT.split("-")[2]
    http_posts = [s for s in spans if s["kind"] == "SpanKind.SERVER" and s["name"].startswith("POST")]
    assert [link["context"]["span_id"] for link in streamable["links"]] in (
        [[p["context"]["span_id"]] for p in http_posts]
    )
    legacy = next(s for s in echo_calls if s is not streamable)
    assert legacy["attributes"]["mcp.protocol.version"] == "2024-11-05"
    assert legacy["attributes"]["mcp.session.id"] != session

    # Without _meta context an MCP span is a child of the HTTP span it came in.
    search = by_name["tools/call search_books"][0]
    http_ids = {p["context"]["span_id"] for p in http_posts}
    assert search["parent_id"] in http_ids
    initialize = [s for s in by_name["initialize"] if s["attributes"].get("mcp.session.id") == session]
    assert initialize and initialize[0]["attributes"]["mcp.protocol.version"] == "2025-11-25"
    assert by_name["notifications/initialized"]
    modern = by_name["tools/call add"][0]
    assert modern["attributes"]["mcp.protocol.version"] == V2026
    assert "mcp.session.id" not in modern["attributes"]

    metrics = [o for o in printed if "resource_metrics" in o]
    names = {
        metric["name"]
        for batch in metrics
        for resource in batch["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    assert {"mcp.server.operation.duration", "mcp.server.session.duration"} <= names
