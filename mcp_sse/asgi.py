"""The one-line ASGI wrapper: ``application = with_mcp(get_asgi_application())``."""

from __future__ import annotations

import gc
from typing import Any

from .conf import mcp_settings


def with_mcp(django_app: Any, *, prefix: str | None = None) -> Any:
    """An ASGI app that sends the MCP paths to mcp_sse's consumers and the rest to ``django_app``.

    Call it after ``get_asgi_application()`` (which sets Django up). Websocket scopes pass
    through to ``django_app`` untouched; ``<prefix>/health/live`` and ``/health/ready`` answer
    load balancers' probes (:mod:`mcp_sse.transports.health`); the ``lifespan`` scope (which Django does not speak) is
    answered here: its start-up installs the graceful stop on SIGTERM (see
    :mod:`mcp_sse.server.drain`), its shutdown waits for the drain. The three paths are matched
    with one dict lookup (a trailing slash is accepted, never redirected).
    """
    from .auth.oauth import metadata_paths, oauth_enabled
    from .server.server import MCPServer
    from .server.telemetry import http_spans
    from .transports.health import HealthEndpoint
    from .transports.legacy import SSEMessagesConsumer, SSEStreamConsumer
    from .transports.metadata import protected_resource_metadata_app
    from .transports.streamable import StreamableHTTPConsumer

    server = MCPServer()  # shared by this app's consumers (passed in, never a module global)
    base = "/" + (prefix if prefix is not None else mcp_settings.PATH_PREFIX).strip("/")
    endpoints: dict[str, Any] = {}
    for path, consumer in (
        (base, StreamableHTTPConsumer),
        (base + "/sse", SSEStreamConsumer),
        (base + "/messages", SSEMessagesConsumer),
    ):
        endpoints[path] = endpoints[path + "/"] = http_spans(consumer.as_asgi(server=server))
    if oauth_enabled():
        # RFC 9728 metadata; with OAuth off these paths stay Django's (no OAuth hint anywhere).
        for path in metadata_paths(prefix):
            endpoints[path] = protected_resource_metadata_app
    for kind in ("live", "ready"):
        endpoints[f"{base}/health/{kind}"] = endpoints[f"{base}/health/{kind}/"] = HealthEndpoint(kind)

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            endpoint = endpoints.get(path)
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        await django_app(scope, receive, send)

    if mcp_settings.GC_FREEZE:
        # Everything imported and built so far lives as long as the process: stop rescanning it.
        gc.collect()
        gc.freeze()
    return application


async def serve_lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan protocol (uvicorn, hypercorn): start-up chains the graceful stop in
    front of the server's signal handlers; shutdown waits for the drain (starting it if no
    signal did) and the call log flush."""
    from .server.drain import install_signal_handlers

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            install_signal_handlers()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stop = install_signal_handlers()
            if stop is not None:
                await stop.started()
            await send({"type": "lifespan.shutdown.complete"})
            return
