"""The official MCP Python SDK's server (``mcp`` 2.x ``MCPServer``) with the same benchmark tools,
for comparison runs (uvicorn serves ``app``).

``BENCH_SDK_MODE``: ``json`` (stateful Streamable HTTP, JSON replies) or ``legacy`` (the
2024-11-05 HTTP+SSE transport at ``/mcp/sse``). The ``mcp`` package is a test-time dependency of
ours anyway, never a runtime one.
"""

from __future__ import annotations

import asyncio
import os
import time

from mcp.server.mcpserver import Context, MCPServer

mcp = MCPServer("sdk bench")


@mcp.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool()
async def slow_echo(text: str, ctx: Context, seconds: float = 1.0) -> str:
    """Echo after a delay, reporting progress every 100 ms (as the demo's slow_echo)."""
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        await asyncio.sleep(seconds / steps)
        await ctx.report_progress(step + 1, steps)
    return text


@mcp.tool()
async def bench_progress(ctx: Context, count: int = 10, interval: float = 0.01) -> str:
    """Report progress ``count`` times; each message is the emission time (time.time())."""
    for index in range(count):
        if interval:
            await asyncio.sleep(interval)
        await ctx.report_progress(index + 1, count, f"{time.time():.6f}")
    return f"sent {count} progress notifications"


MODE = os.environ.get("BENCH_SDK_MODE", "json")
if MODE == "legacy":
    app = mcp.sse_app(sse_path="/mcp/sse", message_path="/mcp/messages/")
else:
    app = mcp.streamable_http_app(streamable_http_path="/mcp", json_response=True)
