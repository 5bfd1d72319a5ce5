"""In-process HTTP for the transport tests: the project's ASGI app driven by a communicator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from mcp_sse.protocol import jsonutil
from mcp_sse.testing import parse_sse

WAIT = 10


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def application() -> Any:
    from django.conf import settings
    from django.utils.module_loading import import_string

    return import_string(settings.ASGI_APPLICATION)


def scope(method: str, path: str, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    sent = {"host": "localhost", **headers}
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> Any:
        return jsonutil.loads(self.body)


async def http(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, query: str = ""
) -> Reply:
    """One complete request (the response read to its end)."""
    raw = body if isinstance(body, bytes) else (b"" if body is None else jsonutil.dumps(body))
    communicator = ApplicationCommunicator(application(), scope(method, path, headers or {}, query))
    await communicator.send_input({"type": "http.request", "body": raw, "more_body": False})
    start = await communicator.receive_output(WAIT)
    reply = Reply(start["status"], {k.decode().lower(): v.decode() for k, v in start.get("headers", [])})
    chunks = []
    while True:
        message = await communicator.receive_output(WAIT)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(WAIT)
    reply.body = b"".join(chunks)
    return reply


class OpenStream:
    """A held SSE response, read event by event; ``close()`` is the client disconnecting."""

    def __init__(self, communicator: ApplicationCommunicator, status: int, headers: dict[str, str]) -> None:
        self.communicator = communicator
        self.status = status
        self.headers = headers
        self.buffer = b""
        self.ended = False

    @classmethod
    async def open(cls, method: str, path: str, headers: dict[str, str], body: Any = None) -> OpenStream:
        raw = b"" if body is None else jsonutil.dumps(body)
        communicator = ApplicationCommunicator(application(), scope(method, path, headers))
        await communicator.send_input({"type": "http.request", "body": raw, "more_body": False})
        start = await communicator.receive_output(WAIT)
        return cls(communicator, start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]})

    async def chunk(self) -> bytes:
        """The next body chunk (b"" once the response has ended)."""
        if self.ended:
            return b""
        message = await self.communicator.receive_output(WAIT)
        if not message.get("more_body"):
            self.ended = True
        data: bytes = message.get("body", b"")
        self.buffer += data
        return data

    async def next_event(self) -> dict[str, Any]:
        """The next SSE event (comments skipped)."""
        while True:
            if b"\n\n" in self.buffer:
                block, _, rest = self.buffer.partition(b"\n\n")
                self.buffer = rest
                events = parse_sse(block + b"\n\n")
                if events:
                    return events[0]
                continue
            if self.ended or (not await self.chunk() and self.ended):
                raise AssertionError("the stream ended")

    async def until_end(self) -> bytes:
        while not self.ended:
            await self.chunk()
        return self.buffer

    async def close(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(WAIT)
