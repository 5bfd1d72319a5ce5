"""Daphne, minus Twisted's form parsing: ``python -m mcp_sse.daphne_server`` takes Daphne's own
command line (``-b``, ``-p``, ``--proxy-headers``, ...) and serves the same ASGI application.

Twisted parses the ``Content-Type`` of every POST that has a body, through the ``email``
package, to fill ``request.args`` for HTML form submissions. Daphne never reads
``request.args`` for a body (it hands the raw body to the ASGI app), and MCP posts JSON, so
this is pure cost: about a tenth of the server's CPU per MCP call (benchmarks/PROFILE.md).
Twisted has a switch for it (``Request(parsePOSTFormSubmission=False)``) that Daphne does not
pass; this server turns it off on each request as Daphne registers it. At verbosity 0 and 1,
where Daphne discards Twisted's log, it also stops Twisted formatting an access-log line per
request for that log. Nothing else differs from ``daphne``.
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server


class MCPDaphneServer(Server):
    """Daphne's server, with Twisted's POST form parsing off for every HTTP request (and, at
    verbosity 0-1, no access-log lines formatted for Twisted's discarded log)."""

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
