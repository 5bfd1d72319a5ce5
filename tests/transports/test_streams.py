"""mcp_sse.transports.streams: the one stream loop, as each transport uses it (in-process).

Legacy ``/sse``, the Streamable GET stream (and its resumption) and the 2026 listen stream:
opening (priming, replay), channel-layer messages by type, keep-alive, and every way to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from mcp_sse import notify
from mcp_sse.protocol import jsonutil, versions
from mcp_sse.server.session import SessionStore
from mcp_sse.testing import MCPTestClient

from .conftest import WAIT, OpenStream, http

pytestmark = pytest.mark.django_db(transaction=True)

V = "2026-07-28"


def data(event: dict[str, Any]) -> Any:
    return jsonutil.loads(event["data"])


async def test_legacy_stream_serves_posted_messages_and_broadcasts_then_ends_on_disconnect() -> None:
    stream = await OpenStream.open("GET", "/mcp/sse", {"accept": "text/event-stream"})
    assert stream.status == 200 and stream.headers["content-type"] == "text/event-stream"
    endpoint = await stream.next_event()
    assert endpoint["event"] == "endpoint" and "/mcp/messages?session_id=" in endpoint["data"]
    session_id = endpoint["data"].split("session_id=")[1]
    post = {"content-type": "application/json"}
    ping = {"jsonrpc": "2.0", "id": "p1", "method": "ping"}
    assert (await http("POST", "/mcp/messages", ping, post, query=f"session_id={session_id}")).status == 202
    reply = await stream.next_event()
    assert reply["event"] == "message" and data(reply) == {"jsonrpc": "2.0", "id": "p1", "result": {}}
    await notify.anotify_list_changed("tools")
    changed = await stream.next_event()
    assert data(changed) == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    await stream.close()
    assert await SessionStore().get(session_id) is None  # the stream's end ends the session


async def test_legacy_stream_ends_when_its_token_is_revoked() -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    from mcp_sse.models import AccessToken

    user = await get_user_model().objects.acreate(username="streams-revoke")
    token, plaintext = await sync_to_async(AccessToken.objects.create_token)(user=user, name="t")
    stream = await OpenStream.open("GET", "/mcp/sse", {"accept": "text/event-stream", "authorization": f"Bearer {plaintext}"})
    assert stream.status == 200
    await stream.next_event()  # endpoint
    await notify.anotify_token_revoked(token.pk + 1000)  # another token: nothing happens
    await notify.anotify_token_revoked(token.pk)
    await asyncio.wait_for(stream.until_end(), WAIT)
    assert stream.ended


async def test_keep_alive_comments_on_an_idle_stream() -> None:
    with override_settings(MCP_SSE={**settings.MCP_SSE, "KEEPALIVE_INTERVAL": 0.05}):
        stream = await OpenStream.open("GET", "/mcp/sse", {"accept": "text/event-stream"})
        await stream.next_event()  # endpoint
        seen = b""
        while b": keep-alive" not in seen:
            seen += await stream.chunk()
        await stream.close()


async def test_streamable_get_stream_primes_numbers_events_and_resumes() -> None:
    async with MCPTestClient() as client:
        headers = {k.decode(): v.decode() for k, v in client.headers({"accept": "text/event-stream"})}
        stream = await OpenStream.open("GET", "/mcp", headers)
        assert stream.status == 200
        priming = await stream.next_event()
        assert priming["data"] == "" and priming["id"].startswith("g") and "retry" in priming
        # One GET stream per session.
        second = await http("GET", "/mcp", headers=headers)
        assert second.status == 409
        await notify.anotify_list_changed("prompts")
        changed = await stream.next_event()
        assert data(changed)["method"] == "notifications/prompts/list_changed"
        await stream.close()
        # Resuming after the priming event replays what came after it.
        resumed = await OpenStream.open("GET", "/mcp", {**headers, "last-event-id": priming["id"]})
        replayed = await resumed.next_event()
        assert replayed["id"] == changed["id"] and data(replayed) == data(changed)
        await resumed.close()
        unknown = await http("GET", "/mcp", headers={**headers, "last-event-id": "nosuchstream.1"})
        assert unknown.status == 404
        malformed = await http("GET", "/mcp", headers={**headers, "last-event-id": "no-dot"})
        assert malformed.status == 400


async def test_streamable_get_stream_ends_when_the_session_is_deleted() -> None:
    client = MCPTestClient()
    await client.initialize()
    headers = {k.decode(): v.decode() for k, v in client.headers({"accept": "text/event-stream"})}
    stream = await OpenStream.open("GET", "/mcp", headers)
    await stream.next_event()  # priming
    await client.__aexit__(None, None, None)  # DELETE
    await asyncio.wait_for(stream.until_end(), WAIT)


def listen_request(**notifications: Any) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {versions.META_PROTOCOL_VERSION: V, versions.META_CLIENT_CAPABILITIES: {}}
    body = {
        "jsonrpc": "2.0",
        "id": "sub-1",
        "method": "subscriptions/listen",
        "params": {"notifications": notifications, "_meta": meta},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": V,
        "mcp-method": "subscriptions/listen",
    }
    return body, headers


async def test_listen_stream_acknowledges_filters_and_closes_gracefully() -> None:
    body, headers = listen_request(toolsListChanged=True)
    stream = await OpenStream.open("POST", "/mcp", headers, body)
    assert stream.status == 200
    ack = data(await stream.next_event())
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"] == {"toolsListChanged": True}
    await notify.anotify_list_changed("prompts")  # not asked for: not sent
    await notify.anotify_list_changed("tools")
    changed = data(await stream.next_event())
    assert changed["method"] == "notifications/tools/list_changed"
    assert changed["params"]["_meta"][versions.META_SUBSCRIPTION_ID] == "sub-1"
    await notify.end_listen_streams()
    final = data(await stream.next_event())
    assert final["id"] == "sub-1" and final["result"]["resultType"] == "complete"
    await asyncio.wait_for(stream.until_end(), WAIT)


async def test_listen_with_a_malformed_filter_is_a_json_error() -> None:
    body, headers = listen_request(toolsListChanged="yes")
    reply = await http("POST", "/mcp", body, headers)
    assert reply.status == 200 and reply.json()["error"]["code"] == -32602
