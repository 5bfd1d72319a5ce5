"""The one-line ASGI wrapper: ``application = with_mcp(get_asgi_application())``."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter

from .conf import mcp_settings


def with_mcp(django_app: Any, *, prefix: str | None = None) -> Any:
    """An ASGI app that sends the MCP paths to mcp_sse's consumers and the rest to ``django_app``.

    Call it after ``get_asgi_application()`` (which sets Django up). Lifespan and websocket
    scopes pass through to ``django_app`` untouched.
    """
    from .routing import mcp_urlpatterns

    base = "/" + (prefix if prefix is not None else mcp_settings.PATH_PREFIX).strip("/")
    mcp_router = URLRouter(mcp_urlpatterns(prefix))

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path == base or path.startswith(base + "/"):
                scoped: Any = dict(scope, path=path)
                await mcp_router(scoped, receive, send)
                return
        await django_app(scope, receive, send)

    return application
