"""URL routing of the MCP endpoints to their consumers."""

from __future__ import annotations

from typing import Any

from django.urls import re_path

from .auth.oauth import metadata_paths, oauth_enabled
from .conf import mcp_settings
from .server.server import MCPServer
from .server.telemetry import http_spans
from .transports.health import HealthEndpoint
from .transports.legacy import SSEMessagesConsumer, SSEStreamConsumer
from .transports.metadata import protected_resource_metadata_app
from .transports.streamable import StreamableHTTPConsumer


def mcp_urlpatterns(prefix: str | None = None) -> list[Any]:
    """``<prefix>`` and ``<prefix>/`` (no redirect: clients do not follow a 301 on POST),
    ``<prefix>/sse`` and ``<prefix>/messages``, served by one :class:`MCPServer`, and the
    health probes ``<prefix>/health/live`` and ``<prefix>/health/ready``."""
    server = MCPServer()
    base = (prefix if prefix is not None else mcp_settings.PATH_PREFIX).strip("/")
    import re

    quoted = re.escape(base)
    patterns = []
    if oauth_enabled():
        for path in metadata_paths(prefix):
            patterns.append(re_path(rf"^{re.escape(path.lstrip('/'))}/?$", protected_resource_metadata_app))  # type: ignore[arg-type]
    return [
        *patterns,
        re_path(rf"^{quoted}/?$", http_spans(StreamableHTTPConsumer.as_asgi(server=server))),
        re_path(rf"^{quoted}/sse/?$", http_spans(SSEStreamConsumer.as_asgi(server=server))),
        re_path(rf"^{quoted}/messages/?$", http_spans(SSEMessagesConsumer.as_asgi(server=server))),
        re_path(rf"^{quoted}/health/live/?$", HealthEndpoint("live")),  # type: ignore[arg-type]
        re_path(rf"^{quoted}/health/ready/?$", HealthEndpoint("ready")),  # type: ignore[arg-type]
    ]
