"""A small raw SSE reader over httpx for tests that need to see the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None
    retry: int | None

    def json(self) -> Any:
        return json.loads(self.data)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse an SSE response body incrementally (comments are skipped)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or fields:
                retry = fields.get("retry")
                yield Event(
                    fields.get("event", "message"), "\n".join(data), fields.get("id"), int(retry) if retry else None
                )
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


async def next_event(iterator: AsyncIterator[Event], timeout: float = 10, *, skip_empty: bool = True) -> Event:
    while True:
        event = await asyncio.wait_for(anext(iterator), timeout)
        if skip_empty and event.data == "":
            continue
        return event


async def response_to(iterator: AsyncIterator[Event], request_id: Any) -> tuple[dict[str, Any], Event] | None:
    """The JSON-RPC response to ``request_id`` on a stream and its event (None if the stream
    ends first); the events before it are skipped."""
    async for event in iterator:
        message = event.json() if event.data else {}
        if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
            return message, event
    return None
