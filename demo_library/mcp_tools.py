"""The demo's tools: what a site owner writes in ``<app>/mcp_tools.py``."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mcp_sse import tools

from .models import Author, Book, Loan
from .serializers import AuthorSerializer, BookSerializer, LoanSerializer, own_loans, visible_books

# A 1x1 transparent PNG.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@tools.tool(annotations={"readOnlyHint": True, "openWorldHint": False})
def echo(text: str) -> str:
    """Echo the text back.

    Args:
        text: What to echo.
    """
    return text


@tools.tool(annotations={"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False})
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


class BookOut(BaseModel):
    id: int
    title: str
    author: str
    published: int | None


@tools.tool(title="Search books", annotations={"readOnlyHint": True, "openWorldHint": False})
def search_books(
    ctx: tools.SyncContext,
    query: Annotated[str, Field(description="Words to look for in titles and author names", min_length=1)],
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
) -> list[BookOut]:
    """Search the library catalogue (and the caller's own books)."""
    from django.db.models import Q

    from .serializers import visible_books

    books = visible_books(ctx.get_user())  # the same rows the book_* tools show this caller
    rows = books.filter(Q(title__icontains=query) | Q(author__name__icontains=query))
    return [
        BookOut(id=b.id, title=b.title, author=b.author.name, published=b.published)
        for b in rows.order_by("title")[:limit]
    ]


@tools.tool(annotations={"readOnlyHint": True})
async def library_report(ctx: tools.Context, sections: Annotated[int, Field(ge=1, le=20)] = 5) -> str:
    """Build a (slow) report, streaming progress and log lines while it runs."""
    lines = []
    for index in range(sections):
        ctx.raise_if_cancelled()
        await ctx.info(f"working on section {index + 1} of {sections}")
        await asyncio.sleep(0.2)
        lines.append(f"Section {index + 1}: ok")
        await ctx.report_progress(index + 1, sections, f"section {index + 1} done")
    return "\n".join(lines)


@tools.tool
async def plan_reading(ctx: tools.Context, topic: str) -> str:
    """Ask the user how many books they want to read about a topic (elicitation)."""
    answer = await ctx.elicit(
        f"How many books about {topic} would you like to read?",
        {
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 1, "default": 3}},
            "required": ["count"],
        },
    )
    if answer.get("action") != "accept":
        return "No plan, then."
    count = int((answer.get("content") or {}).get("count", 3))
    return f"Plan: read {count} books about {topic}."


@tools.tool(annotations={"readOnlyHint": True})
def cover_image(color: Literal["transparent"] = "transparent") -> tools.Image:
    """Return the library's (tiny) cover image."""
    return tools.Image(PIXEL_PNG, "image/png")


@tools.tool(annotations={"readOnlyHint": True})
async def slow_echo(ctx: tools.Context, text: str, seconds: Annotated[float, Field(ge=0, le=60)] = 1.0) -> str:
    """Echo after a delay; reports progress every 100 ms and stops when cancelled."""
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        await asyncio.sleep(seconds / steps)
        await ctx.report_progress(step + 1, steps)
    return text


@tools.tool
async def summarize(ctx: tools.Context, text: str) -> str:
    """Ask the client's model to summarise the text (sampling)."""
    reply = await ctx.sample(f"Summarise in one sentence: {text}", max_tokens=100)
    content = reply.get("content") or {}
    return f"Summary: {content.get('text', '')}"


@tools.tool(annotations={"readOnlyHint": True})
async def bench_progress(
    ctx: tools.Context,
    count: Annotated[int, Field(ge=1, le=1000)] = 10,
    interval: Annotated[float, Field(ge=0, le=1)] = 0.01,
) -> str:
    """Benchmark helper: report progress ``count`` times; each message is its emission time.

    The message holds ``time.time()`` taken just before the notification is sent, so a client on
    the same machine measures emission-to-receipt delay (see benchmarks/).
    """
    import time

    for index in range(count):
        if interval:
            await asyncio.sleep(interval)
        await ctx.report_progress(index + 1, count, f"{time.time():.6f}")
    return f"sent {count} progress notifications"


@tools.tool(annotations={"readOnlyHint": True, "openWorldHint": False})
def lookup_account(account: str, api_key: str) -> dict[str, str]:
    """Look up a (made-up) account; ``api_key`` shows how secrets are redacted in the call log.

    Args:
        account: The account name.
        api_key: The caller's key for the account system (never logged).
    """
    if not api_key:
        raise tools.ToolError("api_key is required")
    return {"account": account, "status": "active", "plan": "library-plus"}


# -- Model-backed tools: <prefix>_list/_get/_create/_update/_delete through DRF serializers ----
# Each call needs the caller's model permission (demo_library.view_book, add_book, ...).

tools.register_model(
    Author,
    serializer=AuthorSerializer,
    filter_fields=["born"],
    search_fields=["name"],
    ordering_fields=["name", "born"],
)

tools.register_model(
    Book,
    serializer=BookSerializer,
    filter_fields=["author", "genre", "published"],
    search_fields=["title", "author__name", "isbn"],
    ordering_fields=["title", "published"],
    max_page_size=50,
    queryset=visible_books,  # others' private books are "not found"
)

tools.register_model(
    Loan,
    serializer=LoanSerializer,
    actions=["list", "get", "create", "update"],
    filter_fields=["book", "returned"],
    ordering_fields=["borrowed"],
    queryset=own_loans,
)
