"""Requests over Twisted's size limits get an answer under ``python -m mcp_sse.daphne_server``.

Twisted's HTTP channel reads the request line and each header line through ``LineReceiver``,
whose limit (``MAX_LENGTH``, 16384 bytes) ends in ``lineLengthExceeded``: the connection is
closed with no response at all. Past ``totalHeadersSize`` (16384 bytes for the request line and
headers together) or ``maxHeaders`` (500) it writes a bare ``400 Bad Request``. Our server
answers 414 URI Too Long for the request line and 431 Request Header Fields Too Large for the
headers, with a JSON-RPC error body (-32600, id null) like the transports' other refusals.

Plain ``daphne`` (d423223 and still): a 16 KiB request line or header line is a dropped
connection with no response; 16 KiB of headers in shorter lines is a bare 400. The live tests
below show both servers side by side over raw sockets.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daphne.http_protocol import HTTPFactory
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from tests.live import LiveDatabase, LiveServer, start_server

LONG = 16 * 1024  # one byte more than Twisted's MAX_LENGTH once the rest of the line is added
MCP_HEADERS = "Host: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def long_request_line() -> bytes:
    return f"GET /mcp?{'q' * LONG} HTTP/1.1\r\n{MCP_HEADERS}\r\n".encode()


def long_authorization() -> bytes:
    return (
        f"POST /mcp HTTP/1.1\r\n{MCP_HEADERS}Authorization: Bearer {'t' * LONG}\r\nContent-Length: {len(PING)}\r\n\r\n"
    ).encode() + PING


def many_header_bytes() -> bytes:
    """Five 4 KiB headers: no line over the limit, the whole header section is."""
    extra = "".join(f"X-Pad-{i}: {'p' * 4096}\r\n" for i in range(5))
    return f"POST /mcp HTTP/1.1\r\n{MCP_HEADERS}{extra}Content-Length: {len(PING)}\r\n\r\n".encode() + PING


def many_headers() -> bytes:
    extra = "".join(f"X-H{i}: v\r\n" for i in range(501))
    return f"POST /mcp HTTP/1.1\r\n{MCP_HEADERS}{extra}Content-Length: {len(PING)}\r\n\r\n".encode() + PING


EXPECTED = {
    # request: (status line, JSON-RPC error message) from python -m mcp_sse.daphne_server
    "request line": (
        long_request_line,
        b"HTTP/1.1 414 URI Too Long",
        "URI Too Long: the request line is longer than 16384 bytes",
    ),
    "Authorization header": (
        long_authorization,
        b"HTTP/1.1 431 Request Header Fields Too Large",
        "Request Header Fields Too Large: a header line is longer than 16384 bytes",
    ),
    "header section": (
        many_header_bytes,
        b"HTTP/1.1 431 Request Header Fields Too Large",
        "Request Header Fields Too Large: the request line and headers are longer than 16384 bytes",
    ),
    "header count": (
        many_headers,
        b"HTTP/1.1 431 Request Header Fields Too Large",
        "Request Header Fields Too Large: more than 500 header fields",
    ),
}


def check_refusal(response: bytes, status_line: bytes, message: str) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == status_line, response[:300]
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    assert int(headers[b"content-length"]) == len(body)
    assert json.loads(body) == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}


# -- in-process: the channel our server builds, fed bytes ----------------------------------------
def channel_of_our_server() -> Any:
    """The protocol our server's HTTP factory builds, connected to an in-memory transport."""
    from mcp_sse.daphne_server import MCPDaphneServer, MCPHTTPChannel

    server = MCPDaphneServer(application=None, endpoints=["tcp:port=0"])
    server.connections = {}  # what run() sets up, as it builds the factory
    server.http_factory = HTTPFactory(server)
    protocol = server.http_factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    protocol.makeConnection(StringTransport())
    channel = protocol._channel
    assert isinstance(channel, MCPHTTPChannel)
    return channel


@pytest.mark.parametrize("case", list(EXPECTED))
def test_the_channel_answers_over_limit_requests(case: str) -> None:
    make, status_line, message = EXPECTED[case]
    channel = channel_of_our_server()
    channel.dataReceived(make())
    check_refusal(channel.transport.value(), status_line, message)
    assert channel.transport.disconnecting or channel.transport.disconnected or channel._refused


def test_what_the_client_still_sends_is_read_and_discarded() -> None:
    """The response must not be lost to a TCP reset: the connection is half-closed and what the
    client still sends is read (and dropped) until it closes or a few seconds pass."""
    channel = channel_of_our_server()
    request = long_authorization()
    channel.dataReceived(request[: LONG + 400])
    written = channel.transport.value()
    assert written.startswith(b"HTTP/1.1 431 ")
    channel.dataReceived(request[LONG + 400 :])
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert channel.transport.value() == written  # nothing more is answered


# -- live: real servers, raw sockets ---------------------------------------------------------------
@pytest.fixture(scope="module")
def servers(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    logs: Path = tmp_path_factory.mktemp("limits")
    started = {
        "mcp-daphne": start_server(live_db, logs, server="mcp-daphne"),
        "daphne": start_server(live_db, logs, server="daphne"),
    }
    yield started
    for server in started.values():
        server.stop()


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request``, then read until the server closes (b"" when it sent nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before reading everything; what it sent is still there
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise AssertionError("the server neither answered nor closed the connection")
        return b"".join(chunks)


@pytest.mark.live
@pytest.mark.parametrize("case", list(EXPECTED))
def test_our_server_answers_414_and_431(servers: dict[str, LiveServer], case: str) -> None:
    make, status_line, message = EXPECTED[case]
    check_refusal(exchange(servers["mcp-daphne"].port, make()), status_line, message)


@pytest.mark.live
def test_our_server_still_serves_the_connection_after_a_normal_request(servers: dict[str, LiveServer]) -> None:
    request = f"POST /mcp HTTP/1.1\r\n{MCP_HEADERS}Content-Length: {len(PING)}\r\nConnection: close\r\n\r\n"
    response = exchange(servers["mcp-daphne"].port, request.encode() + PING)
    # A ping outside a session: refused by the transport, not by the size limits.
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]


@pytest.mark.live
@pytest.mark.parametrize(
    ("case", "plain_daphne"),
    [
        ("request line", b""),  # connection closed, no response
        ("Authorization header", b""),
        ("header section", b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        ("header count", b"HTTP/1.1 400 Bad Request\r\n\r\n"),
    ],
)
def test_what_plain_daphne_does(servers: dict[str, LiveServer], case: str, plain_daphne: bytes) -> None:
    """The behaviour our server replaces, as plain ``daphne`` shows it today."""
    make, _, _ = EXPECTED[case]
    assert exchange(servers["daphne"].port, make()) == plain_daphne
