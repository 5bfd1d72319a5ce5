"""Daphne, minus Twisted's form parsing: ``python -m mcp_sse.daphne_server`` takes Daphne's own
command line (``-b``, ``-p``, ``--proxy-headers``, ...) and serves the same ASGI application.

Twisted parses the ``Content-Type`` of every POST that has a body, through the ``email``
package, to fill ``request.args`` for HTML form submissions. Daphne never reads
``request.args`` for a body (it hands the raw body to the ASGI app), and MCP posts JSON, so
this is pure cost: about a tenth of the server's CPU per MCP call (benchmarks/PROFILE.md).
Twisted has a switch for it (``Request(parsePOSTFormSubmission=False)``) that Daphne does not
pass; this server turns it off on each request as Daphne registers it. At verbosity 0 and 1,
where Daphne discards Twisted's log, it also stops Twisted formatting an access-log line per
request for that log.

It also answers requests over Twisted's size limits instead of dropping them. Twisted reads the
request line and each header line through ``LineReceiver``, whose limit (``MAX_LENGTH``, 16384
bytes) ends in ``lineLengthExceeded``: the connection is closed with no response at all, so a
client sending a 16 KiB token sees only "connection reset". Past ``totalHeadersSize`` (16384
bytes of request line and headers) or ``maxHeaders`` (500) it writes a bare 400. Here those are
414 URI Too Long (the request line) and 431 Request Header Fields Too Large (the headers), with
a JSON-RPC error body like the transports' other refusals. Nothing else differs from ``daphne``.
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from .protocol import jsonutil
from .protocol.errors import INVALID_REQUEST
from .server.drain import install_signal_handlers

# RFC 9110's names (Python 3.11's HTTPStatus still says "Request-URI Too Long").
URI_TOO_LONG = (414, "URI Too Long")
HEADERS_TOO_LARGE = (431, "Request Header Fields Too Large")
# Seconds a refused connection stays half-open, reading (and dropping) what the client still
# sends: closing with unread data makes TCP send a reset, which can destroy the response
# before the client reads it.
LINGER_SECONDS = 2.0


class MCPHTTPChannel(http.HTTPChannel):
    """Twisted's HTTP channel, answering over-limit requests with 414 / 431 instead of closing
    the connection without a word (or with a bare 400)."""

    _refused = False

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._expecting_request_line():
            self.refuse(URI_TOO_LONG, f"the request line is longer than {self.MAX_LENGTH} bytes")
        else:
            self.refuse(HEADERS_TOO_LARGE, f"a header line is longer than {self.MAX_LENGTH} bytes")

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            # Twisted's own check, one step earlier: it would answer a bare 400.
            if self._expecting_request_line():
                self.refuse(URI_TOO_LONG, f"the request line is longer than {self.totalHeadersSize} bytes")
            else:
                self.refuse(
                    HEADERS_TOO_LARGE,
                    f"the request line and headers are longer than {self.totalHeadersSize} bytes",
                )
            return
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        if self._refused:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self.refuse(HEADERS_TOO_LARGE, f"more than {self.maxHeaders} header fields")
            return False
        return bool(super().headerReceived(line))

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: what the client still sends is read and dropped
        super().dataReceived(data)

    def _expecting_request_line(self) -> bool:
        # HTTPChannel's private "next line starts a request" flag (1 or 2 while waiting for one).
        return bool(getattr(self, "_HTTPChannel__first_line", True))

    def refuse(self, status: tuple[int, str], reason: str) -> None:
        """Answer ``status`` (code, phrase) with a JSON-RPC error body and close the connection."""
        self._refused = True
        self.clearLineBuffer()
        code, phrase = status
        message = f"{phrase}: {reason}"
        body = jsonutil.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}})
        head = (
            f"HTTP/1.1 {code} {phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        transport: Any = self.transport  # zope interfaces, which mypy reads loosely
        transport.write(head.encode("ascii") + body)
        self._networkProducer.unregisterProducer()
        lose_write = getattr(transport, "loseWriteConnection", None)
        if lose_write is None:
            transport.loseConnection()
            return
        lose_write()  # FIN once the response is written; keep reading until the client closes
        self._linger = self.callLater(LINGER_SECONDS, transport.loseConnection)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        linger = getattr(self, "_linger", None)
        if linger is not None and linger.active():
            linger.cancel()
        super().connectionLost(reason)


def _channel_protocol() -> Any:
    # What Twisted's HTTPFactory builds per connection (its HTTP/1.1-or-HTTP/2 switching
    # wrapper, twisted.web.http._genericHTTPChannelProtocolFactory), around our channel.
    return http._GenericHTTPChannelProtocol(MCPHTTPChannel())


class MCPDaphneServer(Server):
    """Daphne's server, with Twisted's POST form parsing off for every HTTP request (and, at
    verbosity 0-1, no access-log lines formatted for Twisted's discarded log), answering
    over-limit requests with 414 / 431 (:class:`MCPHTTPChannel`), draining before it stops."""

    def run(self) -> None:
        if self.signal_handlers:
            # Twisted installs its signal handlers as the reactor starts; ours go in front of
            # them just after, on the asyncio loop the reactor runs. (Imported here: importing
            # the reactor before daphne.server would install Twisted's default one.)
            from twisted.internet import reactor

            loop: Any = reactor._asyncioEventloop
            reactor.callWhenRunning(lambda: install_signal_handlers(loop))
        super().run()

    @property
    def http_factory(self) -> Any:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        # Daphne builds its HTTP factory in run(), just before listening: the one moment to give
        # it our channel for the connections it will build.
        factory.protocol = _channel_protocol
        self._http_factory = factory

    def protocol_connected(self, protocol: Any) -> None:
        # Daphne calls this from each request's __init__, before its body arrives. WebSocket
        # protocols pass through here too; they have no such attribute and are left alone.
        if hasattr(protocol, "_parsePOSTFormSubmission"):
            protocol._parsePOSTFormSubmission = False
            if self.verbosity <= 1:
                # At this verbosity Daphne sends Twisted's log nowhere, yet Twisted still formats
                # an access-log line per request for it (Daphne's own access log is separate and
                # unaffected). No log file on the factory: no line.
                protocol.channel.factory.logFile = None
        super().protocol_connected(protocol)


class MCPDaphneCommandLine(CommandLineInterface):
    server_class = MCPDaphneServer


def main() -> None:
    MCPDaphneCommandLine.entrypoint()


if __name__ == "__main__":
    main()
