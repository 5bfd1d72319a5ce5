"""A lean HTTP/1.1 client on asyncio streams: keep-alive connections, Content-Length and chunked
bodies, and an incremental Server-Sent Events parser.

Why not httpx: at a few hundred calls per second its per-request overhead saturates the client's
core before the server's, so the numbers would measure the client. This client builds each
request as one ``bytes`` write and parses just what a reply needs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


class HTTPProtocolError(Exception):
    """The server sent something this client cannot parse, or closed the connection early."""


@dataclass
class ResponseHead:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers keep the last value

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


@dataclass
class HTTPResponse:
    head: ResponseHead
    body: bytes

    @property
    def status(self) -> int:
        return self.head.status


def build_request(method: str, path: str, host: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """One request as the bytes to write (Content-Length added when there is a body or a POST)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive TCP connection; requests on it are strictly sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.authority = f"{host}:{port}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, open_timeout: float = 10.0) -> Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), open_timeout
        )
        self.reader, self.writer = reader, writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    @property
    def is_open(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def ensure_open(self) -> None:
        if not self.is_open:
            await self.open()

    def send(self, data: bytes) -> None:
        assert self.writer is not None, "connection is not open"
        self.writer.write(data)

    async def read_head(self) -> ResponseHead:
        assert self.reader is not None, "connection is not open"
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HTTPProtocolError("connection closed before a response") from exc
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HTTPProtocolError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return ResponseHead(int(parts[1]), headers)

    async def iter_body(self, head: ResponseHead) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive (de-chunked)."""
        reader = self.reader
        assert reader is not None, "connection is not open"
        try:
            if head.chunked:
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        # Trailers (none expected) end with an empty line.
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass
                        break
                    chunk = await reader.readexactly(size + 2)
                    yield chunk[:-2]
            elif head.content_length is not None:
                if head.content_length:
                    yield await reader.readexactly(head.content_length)
            elif head.status in (204, 304) or 100 <= head.status < 200:
                return
            else:
                while True:  # delimited by the connection's end
                    data = await reader.read(65536)
                    if not data:
                        break
                    yield data
                self.close()
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise HTTPProtocolError("connection closed mid-body") from exc
        if not head.keep_alive:
            self.close()

    async def read_body(self, head: ResponseHead) -> bytes:
        if head.content_length is not None and not head.chunked:
            assert self.reader is not None
            try:
                body = await self.reader.readexactly(head.content_length) if head.content_length else b""
            except asyncio.IncompleteReadError as exc:
                self.close()
                raise HTTPProtocolError("connection closed mid-body") from exc
            if not head.keep_alive:
                self.close()
            return body
        return b"".join([piece async for piece in self.iter_body(head)])

    async def request(self, data: bytes) -> HTTPResponse:
        """Send a pre-built request and read the whole response."""
        await self.ensure_open()
        self.send(data)
        head = await self.read_head()
        return HTTPResponse(head, await self.read_body(head))


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SSEParser:
    """Feed bytes, get complete events (``\\n``, ``\\r\\n`` and ``\\r`` line ends)."""

    buffer: str = ""
    comments: int = 0
    _lines: list[str] = field(default_factory=list)

    def feed(self, data: bytes) -> list[SSEEvent]:
        self.buffer += data.decode("utf-8")
        if "\r" in self.buffer:
            self.buffer = self.buffer.replace("\r\n", "\n").replace("\r", "\n")
        events: list[SSEEvent] = []
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            event = SSEEvent()
            data_lines: list[str] = []
            seen_field = False
            for line in block.split("\n"):
                if not line or line.startswith(":"):
                    if line:
                        self.comments += 1
                    continue
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                seen_field = True
                if name == "data":
                    data_lines.append(value)
                elif name == "event":
                    event.event = value
                elif name == "id":
                    event.id = value
            if seen_field:
                event.data = "\n".join(data_lines)
                events.append(event)
        return events
