"""OpenTelemetry per the MCP semantic conventions, in-process with the SDK's in-memory exporter
and metric reader: one SERVER span per request and notification, its parent from
``params._meta``, the site's own spans nested under it (sync tools on our thread pool too), the
duration metrics, and content on spans only when asked and after the call log's redaction."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from opentelemetry import baggage, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_sse import tools
from mcp_sse.protocol import jsonutil
from mcp_sse.protocol.jsonrpc import Notification
from mcp_sse.registry.base import Registry
from mcp_sse.server import telemetry
from mcp_sse.server.server import MCPServer
from mcp_sse.testing import MCPTestClient, MCPTestError
from mcp_sse.transports.streamable import StreamableHTTPConsumer

from .server.conftest import facts

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
V2026 = "2026-07-28"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Recorded:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, f"{name}: {[s.name for s in self.spans()]}"
        return found[0]

    def histogram(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        assert metric.unit == "s"
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    telemetry.use_providers(recorded.tracer_provider, recorded.meter_provider)
    yield recorded
    telemetry.use_providers()


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def registry(recorded: Recorded) -> Registry:
    registry = Registry()
    site_tracer = recorded.tracer_provider.get_tracer("the.site")

    def echo(text: str) -> str:
        return text

    def fail(why: str) -> str:
        raise tools.ToolError(why)

    def count_users() -> str:
        """A sync tool whose ORM query the site traces itself."""
        from django.contrib.auth import get_user_model

        with site_tracer.start_as_current_span("SELECT auth_user") as span:
            span.set_attribute("thread.name", threading.current_thread().name)
            span.set_attribute("baggage.user", str(baggage.get_baggage("user") or ""))
            count = get_user_model().objects.count()
        return str(count)

    def lookup(account: str, api_key: str) -> dict[str, str]:
        return {"account": account, "token": "s3cr3t-result", "plan": "plus"}

    tools.tool(echo, name="echo", registry=registry)
    tools.tool(fail, name="fail", registry=registry)
    tools.tool(count_users, name="count_users", registry=registry)
    tools.tool(lookup, name="lookup", registry=registry)
    tools.resource("memo://today", registry=registry)(lambda: "today's memo")
    tools.prompt(name="greet", registry=registry)(lambda name: f"Hello {name}")
    return registry


@pytest.fixture
def client(registry: Registry) -> MCPTestClient:
    return MCPTestClient(application=StreamableHTTPConsumer.as_asgi(server=MCPServer(registry)))


@pytest.fixture
def instrumented_client(recorded: Recorded, registry: Registry) -> MCPTestClient:
    """Behind opentelemetry-instrumentation-asgi's middleware, as ``opentelemetry-instrument``
    sets a site up: each HTTP request has its SERVER span, current while it is served."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app = StreamableHTTPConsumer.as_asgi(server=MCPServer(registry))
    return MCPTestClient(application=OpenTelemetryMiddleware(app, tracer_provider=recorded.tracer_provider))


def http_span(recorded: Recorded, after: ReadableSpan) -> ReadableSpan:
    """The HTTP server span (made by the ASGI middleware) in which ``after`` was served."""
    found = [s for s in recorded.spans() if s.kind is trace.SpanKind.SERVER and s.name.startswith("POST")]
    containing = [s for s in found if s.start_time <= after.start_time and s.end_time >= after.end_time]
    assert len(containing) == 1, [s.name for s in found]
    return containing[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_session_gives_one_server_span_per_request_and_notification(
    recorded: Recorded, client: MCPTestClient
) -> None:
    async with client:
        await client.list_tools()
        assert (await client.call_tool("echo", {"text": "hi"}))["content"][0]["text"] == "hi"
        assert (await client.call_tool("fail", {"why": "no luck"}))["isError"] is True
        with pytest.raises(MCPTestError):
            await client.call_tool("nonexistent", {})
        await client.request("resources/read", {"uri": "memo://today"})
        await client.request("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})
        await client.request("prompts/list")
        session_id = client.session_id
    assert session_id

    initialize = recorded.span("initialize")
    assert initialize.kind is trace.SpanKind.SERVER
    assert attrs(initialize)["mcp.session.id"] == session_id  # made by this very request
    assert attrs(initialize)["mcp.protocol.version"] == client.protocol_version
    initialized = recorded.span("notifications/initialized")
    assert "jsonrpc.request.id" not in attrs(initialized)
    assert attrs(initialized)["mcp.session.id"] == session_id

    call = attrs(recorded.span("tools/call echo"))
    assert call == {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "echo",
        "gen_ai.operation.name": "execute_tool",
        "jsonrpc.request.id": call["jsonrpc.request.id"],
        "mcp.session.id": session_id,
        "mcp.protocol.version": client.protocol_version,
        "client.address": "127.0.0.1",
        "client.port": 50000,
        "network.protocol.name": "http",
        "network.protocol.version": "1.1",
        "network.transport": "tcp",
    }
    assert int(call["jsonrpc.request.id"]) > 1
    assert recorded.span("tools/call echo").status.status_code is trace.StatusCode.UNSET

    failed = recorded.span("tools/call fail")
    assert attrs(failed)["error.type"] == "tool_error"
    assert failed.status.status_code is trace.StatusCode.ERROR and failed.status.description == "no luck"
    unknown = recorded.span("tools/call nonexistent")
    assert attrs(unknown)["error.type"] == "-32602" == attrs(unknown)["rpc.response.status_code"]
    assert unknown.status.description == "Unknown tool: nonexistent"

    read = attrs(recorded.span("resources/read"))  # URIs stay out of span names
    assert read["mcp.resource.uri"] == "memo://today" and "error.type" not in read
    assert attrs(recorded.span("prompts/get greet"))["gen_ai.prompt.name"] == "greet"
    assert "gen_ai.operation.name" not in attrs(recorded.span("prompts/get greet"))
    assert recorded.spans("tools/list") and recorded.spans("prompts/list")
    # Nothing in this session had a trace of its own: every span is a root.
    assert all(s.parent is None for s in recorded.spans())

    points = recorded.histogram("mcp.server.operation.duration")
    by_method = {(p.attributes["mcp.method.name"], p.attributes.get("error.type")): p for p in points}
    assert by_method[("tools/call", "tool_error")].count == 1
    assert by_method[("tools/call", "-32602")].attributes["rpc.response.status_code"] == "-32602"
    ok_call = by_method[("tools/call", None)]
    assert ok_call.attributes["gen_ai.tool.name"] == "echo" and ok_call.count == 1
    assert list(ok_call.explicit_bounds) == list(telemetry.DURATION_BUCKETS)
    assert "mcp.session.id" not in ok_call.attributes and "jsonrpc.request.id" not in ok_call.attributes
    assert ("notifications/initialized", None) in by_method
    # The client's DELETE ended the session.
    sessions = recorded.histogram("mcp.server.session.duration")
    assert len(sessions) == 1 and sessions[0].count == 1
    assert sessions[0].attributes["mcp.protocol.version"] == client.protocol_version


async def test_the_parent_comes_from_meta_and_the_ambient_span_is_linked(
    recorded: Recorded, instrumented_client: MCPTestClient
) -> None:
    """A client's traceparent/tracestate/baggage in params._meta make the server span's parent;
    the span current when the request arrived (the ASGI instrumentation's HTTP span) is linked;
    the site's span in the sync tool, run on our thread pool, nests under the server span."""
    async with instrumented_client as client:
        meta = {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7", "baggage": "user=ada"}
        result = await client.request("tools/call", {"name": "count_users", "arguments": {}, "_meta": meta})
    assert result["content"][0]["text"].isdigit()
    call = recorded.span("tools/call count_users")
    assert call.parent is not None and call.parent.is_remote
    assert f"{call.context.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert f"{call.parent.span_id:016x}" == TRACEPARENT.split("-")[2]
    assert call.context.trace_state.get("rojo") == "00f067aa0ba902b7"
    http = http_span(recorded, call)
    assert http.context.trace_id != call.context.trace_id  # one MCP request is not one HTTP request
    assert [link.context.span_id for link in call.links] == [http.context.span_id]

    query = recorded.span("SELECT auth_user")
    assert query.parent is not None and query.parent.span_id == call.context.span_id
    assert query.context.trace_id == call.context.trace_id
    assert attrs(query)["thread.name"].startswith("mcp-tool-")  # our pool, not the event loop
    assert attrs(query)["baggage.user"] == "ada"


async def test_without_meta_context_the_http_span_is_the_parent(
    recorded: Recorded, instrumented_client: MCPTestClient
) -> None:
    async with instrumented_client as client:
        await client.call_tool("echo", {"text": "x"})
    call = recorded.span("tools/call echo")
    http = http_span(recorded, call)
    assert call.parent is not None and call.parent.span_id == http.context.span_id
    assert not call.links
    initialize = recorded.span("initialize")
    assert (
        initialize.parent is not None and initialize.parent.span_id == http_span(recorded, initialize).context.span_id
    )


async def test_arguments_and_results_only_when_asked_and_redacted(recorded: Recorded, client: MCPTestClient) -> None:
    async with client:
        await client.call_tool("lookup", {"account": "acme", "api_key": "k-123"})
    assert "gen_ai.tool.call.arguments" not in attrs(recorded.span("tools/call lookup"))
    recorded.exporter.clear()
    from django.conf import settings

    with override_settings(MCP_SSE={**settings.MCP_SSE, "OTEL_CAPTURE_CONTENT": True}):
        async with client:
            await client.call_tool("lookup", {"account": "acme", "api_key": "k-123"})
    span = attrs(recorded.span("tools/call lookup"))
    arguments = json.loads(span["gen_ai.tool.call.arguments"])
    assert arguments == {"account": "acme", "api_key": "[redacted]"}
    assert "k-123" not in json.dumps(span) and "s3cr3t-result" not in json.dumps(span)
    assert "acme" in span["gen_ai.tool.call.result"] and "[redacted]" in span["gen_ai.tool.call.result"]


async def test_a_cancelled_call_ends_its_span_as_cancelled(recorded: Recorded, registry: Registry) -> None:
    started = asyncio.Event()

    async def wait_forever() -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    tools.tool(wait_forever, name="wait_forever", registry=registry)
    server = MCPServer(registry)
    session = await server.sessions.create("anonymous", "streamable-http", protocol_version="2025-11-25")
    request_facts = facts("tools/call", {"name": "wait_forever", "arguments": {}}, request_id=7, session_id=session.id)
    exchange = server.stateful.exchange(request_facts, session)
    work = asyncio.ensure_future(server.requests.serve(server.stateful, request_facts.request, exchange))
    await asyncio.wait_for(started.wait(), 10)
    note = Notification("notifications/cancelled", {"requestId": 7, "reason": "user"})
    assert await server.requests.client_message(session.id, note) is True
    assert await asyncio.wait_for(work, 10) is None
    span = recorded.span("tools/call wait_forever")
    assert attrs(span)["error.type"] == "cancelled" and span.status.status_code is trace.StatusCode.ERROR
    cancel = recorded.span("notifications/cancelled")
    assert attrs(cancel)["mcp.session.id"] == session.id and "error.type" not in attrs(cancel)


async def test_a_2026_request_has_its_span_without_a_session(recorded: Recorded, client: MCPTestClient) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "traceparent": TRACEPARENT,
    }
    message = {
        "jsonrpc": "2.0",
        "id": "r-1",
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "modern"}, "_meta": meta},
    }
    headers = {"mcp-protocol-version": V2026, "mcp-method": "tools/call", "mcp-name": "echo"}
    status, _, body = await client.http("POST", jsonutil.dumps(message), headers)
    assert status == 200, body
    span = recorded.span("tools/call echo")
    assert attrs(span)["mcp.protocol.version"] == V2026 and attrs(span)["jsonrpc.request.id"] == "r-1"
    assert "mcp.session.id" not in attrs(span)
    assert span.parent is not None and f"{span.parent.span_id:016x}" == TRACEPARENT.split("-")[2]


def run_python(code: str, **env: str) -> str:
    import os

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "demo_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SERVE_ONE_CALL = """
import asyncio, sys
{prelude}
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from mcp_sse.testing import MCPTestClient

async def main():
    async with MCPTestClient() as client:
        result = await client.call_tool("echo", {{"text": "plain"}})
    assert result["content"][0]["text"] == "plain"
    from mcp_sse.server import telemetry
    loaded = [name for name, module in sys.modules.items() if name.startswith("opentelemetry") and module]
    print("imported", bool(loaded), "active", telemetry.current() is not None)

asyncio.run(main())
"""


def test_without_the_extra_nothing_is_imported_and_everything_works(tmp_path: Path) -> None:
    """opentelemetry not importable (the [otel] extra absent): requests are served as before."""
    prelude = "sys.modules['opentelemetry'] = None  # as if opentelemetry-api were not installed"
    out = run_python(SERVE_ONE_CALL.format(prelude=prelude), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert out.split() == ["imported", "False", "active", "False"]


def test_installed_but_no_sdk_configured_makes_no_span(tmp_path: Path) -> None:
    out = run_python(SERVE_ONE_CALL.format(prelude=""), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert out.split() == ["imported", "True", "active", "False"]
