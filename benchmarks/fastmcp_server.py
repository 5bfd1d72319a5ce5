"""A FastMCP server with the demo's benchmark tools, for comparison runs (uvicorn serves ``app``).

``BENCH_FASTMCP_MODE`` picks the transport: ``json`` (stateful Streamable HTTP, JSON replies),
``sse`` (stateful Streamable HTTP, SSE replies: FastMCP's default) or ``legacy`` (the 2024-11-05
HTTP+SSE transport: GET ``/mcp/sse``, POST to the ``endpoint`` it announces).
"""

from __future__ import annotations

import asyncio
import os
import time

from fastmcp import Context, FastMCP

mcp: FastMCP = FastMCP("fastmcp bench")


@mcp.tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool
async def slow_echo(text: str, ctx: Context, seconds: float = 1.0) -> str:
    """Echo after a delay, reporting progress every 100 ms (as the demo's slow_echo)."""
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        await asyncio.sleep(seconds / steps)
        await ctx.report_progress(step + 1, steps)
    return text


@mcp.tool
async def bench_progress(ctx: Context, count: int = 10, interval: float = 0.01) -> str:
    """Report progress ``count`` times; each message is the emission time (time.time())."""
    for index in range(count):
        if interval:
            await asyncio.sleep(interval)
        await ctx.report_progress(index + 1, count, f"{time.time():.6f}")
    return f"sent {count} progress notifications"


MODE = os.environ.get("BENCH_FASTMCP_MODE", "json")
if MODE == "legacy":
    app = mcp.http_app(path="/mcp/sse", transport="sse")
else:
    app = mcp.http_app(path="/mcp", transport="http", json_response=MODE == "json")
