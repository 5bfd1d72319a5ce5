"""The floor: a bare Channels consumer that answers every POST with a canned JSON-RPC reply.

No sessions, no dispatch, no tools; just Channels' ``AsyncHttpConsumer`` and a ``json.loads`` to
copy the request id. Served by Daphne or uvicorn as ``benchmarks.stub_server:application``; what
our server costs above this is the price of MCP itself.
"""

from __future__ import annotations

import json
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        SECRET_KEY="bench-stub",
        CHANNEL_LAYERS={},
    )
    django.setup()

from channels.generic.http import AsyncHttpConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path

JSON_HEADERS = [(b"content-type", b"application/json"), (b"mcp-session-id", b"stub-session")]


class CannedReplyConsumer(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        message: Any = json.loads(body) if body else {}
        if not isinstance(message, dict) or "id" not in message:
            await self.send_response(202, b"", headers=[])
            return
        if message.get("method") == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": message.get("params", {}).get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stub", "version": "0"},
            }
        else:
            text = message.get("params", {}).get("arguments", {}).get("text", "")
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        reply = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        await self.send_response(200, reply, headers=JSON_HEADERS)


route: Any = re_path(r"^mcp/?$", CannedReplyConsumer.as_asgi())  # type: ignore[arg-type]  # Channels routes ASGI apps
application = ProtocolTypeRouter({"http": URLRouter([route])})
