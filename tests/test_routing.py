"""The two ways of mounting the endpoints: with_mcp() and mcp_urlpatterns() for a URLRouter."""

from __future__ import annotations

import re

from mcp_sse.routing import mcp_urlpatterns
from mcp_sse.transports.legacy import SSEMessagesConsumer, SSEStreamConsumer
from mcp_sse.transports.streamable import StreamableHTTPConsumer


def consumer_for(path: str, prefix: str | None = None) -> type | None:
    for pattern in mcp_urlpatterns(prefix):
        if re.match(pattern.pattern.regex.pattern, path.lstrip("/")):
            return pattern.callback.consumer_class  # type: ignore[no-any-return]
    return None


def test_url_patterns_cover_the_three_endpoints_with_and_without_slash() -> None:
    for path in ("/mcp", "/mcp/"):
        assert consumer_for(path) is StreamableHTTPConsumer
    for path in ("/mcp/sse", "/mcp/sse/"):
        assert consumer_for(path) is SSEStreamConsumer
    for path in ("/mcp/messages", "/mcp/messages/"):
        assert consumer_for(path) is SSEMessagesConsumer
    assert consumer_for("/mcpx") is None and consumer_for("/mcp/other") is None


def test_custom_prefix() -> None:
    assert consumer_for("/api/agents/sse", "/api/agents") is SSEStreamConsumer
    assert consumer_for("/mcp/sse", "/api/agents") is None
