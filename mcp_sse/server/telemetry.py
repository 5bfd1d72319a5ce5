"""OpenTelemetry spans and metrics for MCP requests, per the MCP semantic conventions.

Optional: the ``[otel]`` extra installs ``opentelemetry-api`` and nothing else; the site chooses
the SDK and exporters (``opentelemetry-instrument`` and the ``OTEL_*`` variables, or its own
set-up). Without the API, with ``MCP_SSE["OTEL_ENABLED"] = False``, or while no SDK provider is
set, :func:`current` answers None and callers take their plain path: no span object, no context
switch, no attribute dict.

One SERVER span per JSON-RPC request (started and ended by the request lifecycle, so every
transport and era gets the same one) and per client notification, named ``{mcp.method.name}
{target}``. Its parent is the trace context the client put in ``params._meta`` (``traceparent``,
``tracestate``, ``baggage``: reserved there by the 2026-07-28 revision) and it links the ambient
span (an HTTP span made by opentelemetry-instrumentation-asgi/django); without ``_meta`` context
the ambient span is its parent. While the request runs the span is the current one, so the
site's own spans (ORM, Redis, HTTP clients) nest under it, in sync tools too: the tool thread
pool runs each call in a copy of the caller's contextvars, where OpenTelemetry keeps its context.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ..audit import redact
from ..conf import mcp_settings
from ..context import RequestInfo

# The conventions' explicit bucket boundaries for MCP durations (seconds).
DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The span name's target, per method: the attribute that names it (URIs stay out of span names:
# they are high-cardinality; they go in mcp.resource.uri).
TARGET_ATTRIBUTES = {"tools/call": "gen_ai.tool.name", "prompts/get": "gen_ai.prompt.name"}
URI_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
# Trace context keys reserved in params._meta.
PROPAGATION_KEYS = ("traceparent", "tracestate", "baggage")
# Longest captured arguments/result (characters of JSON), like the call log's cap.
CAPTURE_LIMIT = 8192
# error.type of a request the client cancelled (no response is sent).
CANCELLED = "cancelled"
TOOL_ERROR = "tool_error"
# Seconds between looks for an SDK while none is configured.
LOOK_INTERVAL = 1.0
# Attributes of a span that also go on the duration metric (low-cardinality ones only).
METRIC_ATTRIBUTES = (
    "mcp.method.name",
    "gen_ai.tool.name",
    "gen_ai.prompt.name",
    "gen_ai.operation.name",
    "mcp.protocol.version",
    "network.protocol.name",
    "network.protocol.version",
    "network.transport",
)


class Telemetry:
    """The OpenTelemetry API objects this server uses (made once the API is importable)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import context, metrics, propagate, trace

        from .. import __version__ as version

        self.context = context
        self.trace = trace
        self.propagate = propagate
        self.kind = trace.SpanKind.SERVER
        self.error_status = trace.StatusCode.ERROR
        self.explicit = tracer_provider is not None
        self.tracer = trace.get_tracer("mcp_sse", version, tracer_provider=tracer_provider)
        meter = metrics.get_meter("mcp_sse", version, meter_provider=meter_provider)
        self.operation_duration = meter.create_histogram(
            "mcp.server.operation.duration",
            unit="s",
            description="MCP request or notification duration as observed on the server",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.session_duration = meter.create_histogram(
            "mcp.server.session.duration",
            unit="s",
            description="The duration of the MCP session as observed on the server",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        # Set once an SDK provider is seen: providers are set once per process.
        self.configured = self.explicit
        self.placeholders = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self.next_look = 0.0

    def is_configured(self) -> bool:
        """Whether an SDK is set (a global provider that is not the API's placeholder). Until
        one is, the provider is looked at once a second, not per request (asking costs about
        4 µs: it reads the environment): an SDK set up after start-up is seen within a second."""
        if not self.configured:
            now = time.monotonic()
            if now < self.next_look:
                return False
            self.next_look = now + LOOK_INTERVAL
            self.configured = not isinstance(self.trace.get_tracer_provider(), self.placeholders)
        return self.configured

    # -- spans ------------------------------------------------------------------------------
    def start(self, method: str, params: Mapping[str, Any], request_id: Any, info: RequestInfo) -> RequestSpan:
        """Start the SERVER span of one request or notification and make it current."""
        attributes: dict[str, Any] = {"mcp.method.name": method}
        name = method
        target_key = TARGET_ATTRIBUTES.get(method)
        if target_key is not None:
            target = params.get("name")
            if isinstance(target, str) and target:
                attributes[target_key] = target
                name = f"{method} {target}"
        if method == "tools/call":
            attributes["gen_ai.operation.name"] = "execute_tool"
        elif method in URI_METHODS or method == "notifications/resources/updated":
            uri = params.get("uri")
            if isinstance(uri, str):
                attributes["mcp.resource.uri"] = uri
        if request_id is not None:
            attributes["jsonrpc.request.id"] = str(request_id)
        if info.session_id:
            attributes["mcp.session.id"] = info.session_id
        if info.protocol_version:
            attributes["mcp.protocol.version"] = info.protocol_version
        if info.remote_addr:
            attributes["client.address"] = info.remote_addr
            if info.remote_port:
                attributes["client.port"] = info.remote_port
        attributes["network.protocol.name"] = "http"
        if info.http_version:
            attributes["network.protocol.version"] = info.http_version
        attributes["network.transport"] = "tcp"

        ambient = self.context.get_current()
        parent = ambient
        links = None
        meta = params.get("_meta")
        if isinstance(meta, Mapping) and "traceparent" in meta:
            carrier = {k: meta[k] for k in PROPAGATION_KEYS if isinstance(meta.get(k), str)}
            extracted = self.propagate.extract(carrier, context=ambient)
            if self.trace.get_current_span(extracted).get_span_context().is_valid:
                parent = extracted
                ambient_span = self.trace.get_current_span(ambient).get_span_context()
                if ambient_span.is_valid:
                    links = [self.trace.Link(ambient_span)]
        span = self.tracer.start_span(name, parent, self.kind, attributes, links)
        token = self.context.attach(self.trace.set_span_in_context(span, parent))
        return RequestSpan(self, span, token, attributes)

    def end_session(self, created: float, protocol_version: str) -> None:
        """Record ``mcp.server.session.duration`` for a session that ends now."""
        attributes = {"network.protocol.name": "http", "network.transport": "tcp"}
        if protocol_version:
            attributes["mcp.protocol.version"] = protocol_version
        self.session_duration.record(max(0.0, time.time() - created), attributes)


class RequestSpan:
    """A started request span: :meth:`end` it once with what the request came to."""

    __slots__ = ("attributes", "span", "started", "telemetry", "token")

    def __init__(self, telemetry: Telemetry, span: Any, token: Any, attributes: dict[str, Any]) -> None:
        self.telemetry = telemetry
        self.span = span
        self.token = token
        self.attributes = attributes
        self.started = time.perf_counter()

    def capture(self, key: str, value: Any) -> None:
        """Put (redacted, capped) content on the span when ``OTEL_CAPTURE_CONTENT`` asks."""
        if not mcp_settings.OTEL_CAPTURE_CONTENT or not self.span.is_recording():
            return
        try:
            text = json.dumps(_redacted(value), default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            return
        self.span.set_attribute(key, text[:CAPTURE_LIMIT])

    def end(
        self,
        response: Mapping[str, Any] | None,
        *,
        error: BaseException | None = None,
        session_id: str | None = None,
        arguments: Any = None,
    ) -> None:
        """End the span (and detach its context) for a response message, None for a request the
        client cancelled, or the exception the request ended with."""
        telemetry = self.telemetry
        span = self.span
        attributes = self.attributes
        error_type = ""
        description = ""
        method = attributes["mcp.method.name"]
        telemetry.context.detach(self.token)
        if error is not None:
            error_type = type(error).__qualname__
            description = str(error)
        elif response is None:
            if "jsonrpc.request.id" in attributes:  # a request (not a notification) left unanswered
                error_type = CANCELLED
                description = "cancelled by the client"
        else:
            failure = response.get("error")
            result = response.get("result")
            if isinstance(failure, Mapping):
                code = str(failure.get("code"))
                error_type = code
                description = str(failure.get("message") or "")
                attributes["rpc.response.status_code"] = code
                span.set_attribute("rpc.response.status_code", code)
            elif isinstance(result, Mapping):
                if method == "tools/call":
                    if result.get("isError") is True:
                        error_type = TOOL_ERROR
                        description = _first_text(result)
                    else:
                        self.capture("gen_ai.tool.call.result", result)
                elif method == "initialize":
                    version = result.get("protocolVersion")
                    if isinstance(version, str):
                        attributes["mcp.protocol.version"] = version
                        span.set_attribute("mcp.protocol.version", version)
        if method == "tools/call" and arguments is not None:
            self.capture("gen_ai.tool.call.arguments", arguments)
        if session_id and "mcp.session.id" not in attributes:
            span.set_attribute("mcp.session.id", session_id)
        if error_type:
            span.set_attribute("error.type", error_type)
            span.set_status(telemetry.error_status, description[:1000] or None)
        span.end()
        measured = {k: attributes[k] for k in METRIC_ATTRIBUTES if k in attributes}
        if error_type:
            measured["error.type"] = error_type
            if "rpc.response.status_code" in attributes:
                measured["rpc.response.status_code"] = attributes["rpc.response.status_code"]
        telemetry.operation_duration.record(time.perf_counter() - self.started, measured)


def _redacted(value: Any) -> Any:
    """``value`` with REDACT_KEYS applied, also inside text blocks that hold JSON (a tool's
    structured result is mirrored as JSON text, where key-based redaction would miss it)."""
    value = redact(value)
    content = value.get("content") if isinstance(value, dict) else None
    if isinstance(content, list):
        blocks = []
        for block in content:
            text = block.get("text") if isinstance(block, dict) and block.get("type") == "text" else None
            if isinstance(text, str) and text[:1] in ("{", "["):
                try:
                    block = {**block, "text": json.dumps(redact(json.loads(text)), ensure_ascii=False)}
                except ValueError:
                    pass
            blocks.append(block)
        value = {**value, "content": blocks}
    return value


def _first_text(result: Mapping[str, Any]) -> str:
    for block in result.get("content") or ():
        if isinstance(block, Mapping) and block.get("type") == "text":
            return str(block.get("text", ""))
    return ""


def _load() -> Telemetry | None:
    if not mcp_settings.OTEL_ENABLED:
        return None
    try:
        return Telemetry(*_providers)
    except ImportError:
        return None


# Providers given by :func:`use_providers` (None, None: the global ones).
_providers: tuple[Any, Any] = (None, None)


def current() -> Telemetry | None:
    """The telemetry to record with, or None (not installed, turned off, or no SDK set)."""
    telemetry: Telemetry | None = mcp_settings.derived("otel", _load)
    if telemetry is None or not (telemetry.configured or telemetry.is_configured()):
        return None
    return telemetry


def use_providers(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Record with these providers instead of the global ones (both None: back to the global
    ones), as OpenTelemetry instrumentors take ``tracer_provider=``: for tests, or a site that
    keeps its MCP telemetry apart."""
    global _providers
    _providers = (tracer_provider, meter_provider)
    mcp_settings.forget_derived("otel")


def start_request(method: str, params: Mapping[str, Any], request_id: Any, info: RequestInfo) -> RequestSpan | None:
    """Start the span of a request or notification; None when telemetry is off (the caller then
    does nothing more)."""
    telemetry = current()
    if telemetry is None:
        return None
    return telemetry.start(method, params, request_id, info)


def http_spans(app: Any) -> Any:
    """``app`` inside opentelemetry-instrumentation-asgi's middleware (an HTTP SERVER span per
    request, the ambient span MCP spans link to) when that package is installed and an SDK is
    configured; else ``app`` itself. ``opentelemetry-instrument`` traces Django's own views, but
    the MCP endpoints are served beside Django, not through its middleware. Without the
    middleware's span per ASGI send/receive message (one per SSE event on a stream); the
    ``OTEL_PYTHON_ASGI_EXCLUDED_URLS`` variable is honoured as by the ASGI instrumentation."""
    if current() is None:
        return app
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.util.http import get_excluded_urls
    except ImportError:
        return app
    return OpenTelemetryMiddleware(app, excluded_urls=get_excluded_urls("ASGI"), exclude_spans=["receive", "send"])


def session_ended(created: float, protocol_version: str) -> None:
    """A session ended (deleted by its client, or its legacy stream closed)."""
    telemetry = current()
    if telemetry is not None:
        telemetry.end_session(created, protocol_version)
