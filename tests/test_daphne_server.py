"""``python -m mcp_sse.daphne_server``: Daphne with Twisted's POST form parsing off.

The in-process tests show the switch is what changes (and that plain Daphne leaves it on, so
they can fail); the live ones show the server serves MCP calls and still hands form posts to
Django whole (the admin login).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from daphne.http_protocol import WebRequest
from daphne.server import Server
from mcp import Client
from twisted.web import http
from twisted.web.test.requesthelper import DummyChannel

from mcp_sse.daphne_server import MCPDaphneCommandLine, MCPDaphneServer
from tests.live import LiveDatabase, LiveServer


def request_registered_with(server: Server) -> WebRequest:
    server.connections = {}
    channel = DummyChannel()
    factory = http.HTTPFactory()
    factory.startFactory()  # as listening does: the access log goes to Twisted's log
    factory.server = server
    channel.factory = factory
    request = WebRequest(channel)
    assert request in server.connections  # Daphne's own bookkeeping still happens
    return request


def access_log_of(request: WebRequest) -> object:
    return request.channel.factory._logFile


def test_requests_of_our_server_skip_form_parsing() -> None:
    request = request_registered_with(MCPDaphneServer(application=None, endpoints=["tcp:port=0"]))
    assert request._parsePOSTFormSubmission is False


def test_plain_daphne_parses_forms() -> None:
    """The behaviour we turn off: without our server every request would parse forms (and
    format an access-log line for Twisted's log)."""
    request = request_registered_with(Server(application=None, endpoints=["tcp:port=0"]))
    assert request._parsePOSTFormSubmission is True
    assert access_log_of(request) is not None


def test_twisted_access_lines_are_not_formatted_while_daphne_discards_them() -> None:
    for verbosity in (0, 1):
        quiet = request_registered_with(
            MCPDaphneServer(application=None, endpoints=["tcp:port=0"], verbosity=verbosity)
        )
        assert access_log_of(quiet) is None
    # From verbosity 2 on Daphne passes Twisted's log to Python logging: the lines stay.
    chatty = request_registered_with(MCPDaphneServer(application=None, endpoints=["tcp:port=0"], verbosity=2))
    assert access_log_of(chatty) is not None


class WebSocketLike:
    """Hashable, like Daphne's WebSocket protocol, and without Twisted's request attributes."""


def test_protocols_without_the_switch_are_left_alone() -> None:
    """WebSocket protocols register through the same hook and have no such attribute."""
    server = MCPDaphneServer(application=None, endpoints=["tcp:port=0"])
    server.connections = {}
    websocket_like = WebSocketLike()
    server.protocol_connected(websocket_like)
    assert not hasattr(websocket_like, "_parsePOSTFormSubmission")
    assert websocket_like in server.connections


def test_command_line_is_daphnes_with_our_server() -> None:
    assert MCPDaphneCommandLine.server_class is MCPDaphneServer
    # Daphne's own options are all there.
    assert "--proxy-headers" in MCPDaphneCommandLine().parser.format_help()


@pytest.fixture(scope="module")
def mcp_daphne(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    from tests.live import start_server

    server = start_server(live_db, tmp_path_factory.mktemp("mcp-daphne"), server="mcp-daphne")
    yield server  # type: ignore[misc]
    server.stop()


@pytest.mark.live
async def test_serves_mcp_calls(mcp_daphne: LiveServer) -> None:
    async with Client(mcp_daphne.mcp_url, mode="legacy") as client:
        result = await client.call_tool("echo", {"text": "through mcp_sse.daphne_server"})
    assert result.content[0].text == "through mcp_sse.daphne_server"  # type: ignore[union-attr]


@pytest.mark.live
async def test_form_posts_still_reach_django_whole(
    mcp_daphne: LiveServer, live_db: LiveDatabase, artifacts_dir: Path
) -> None:
    """The admin login is a urlencoded form POST: Django parses the raw body itself."""
    live_db.create_user("form-poster", superuser=True)
    async with httpx.AsyncClient(base_url=mcp_daphne.url, follow_redirects=False) as http:
        page = await http.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        response = await http.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token.group(1), "username": "form-poster", "password": "pw"},
            headers={"referer": f"{mcp_daphne.url}/admin/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        assert response.headers["location"] == "/admin/"
        assert (await http.get("/admin/")).status_code == 200
