"""mcp_sse.server.requests: the request lifecycle (in-flight table, cancellation, the client's
replies) without a transport: requests are served through a Port that records what is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from mcp_sse import tools
from mcp_sse.protocol.jsonrpc import Notification, Response
from mcp_sse.registry.base import Registry
from mcp_sse.server.exchange import Exchange, Port
from mcp_sse.server.routing import cancel_key, request_group, request_token
from mcp_sse.server.server import MCPServer
from mcp_sse.server.session import Session
from mcp_sse.store import shared_cache

from .conftest import Outbox, facts

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10


@pytest.fixture
async def session(server: MCPServer) -> Session:
    return await server.sessions.create(
        "anonymous", "streamable-http", protocol_version="2025-11-25", client_capabilities={"elicitation": {}}
    )


def register_waiting_tool(registry: Registry) -> asyncio.Event:
    """A tool ``wait_forever`` that runs until cancelled; the event is set once it runs."""
    started = asyncio.Event()

    async def wait_forever() -> str:
        started.set()
        await asyncio.sleep(WAIT * 2)
        return "never"

    tools.tool(wait_forever, name="wait_forever", registry=registry)
    return started


def call(server: MCPServer, session: Session, name: str, port: Port, request_id: Any = 7) -> tuple[Any, Exchange]:
    request_facts = facts("tools/call", {"name": name, "arguments": {}}, request_id=request_id, session_id=session.id)
    exchange = server.stateful.exchange(request_facts, session, port)
    return request_facts.request, exchange


async def test_a_served_request_leaves_the_inflight_table(server: MCPServer, registry: Registry, session: Session) -> None:
    tools.tool(lambda: "done", name="quick", registry=registry)
    request, exchange = call(server, session, "quick", Port())
    response = await server.requests.serve(server.stateful, request, exchange)
    assert response is not None and response["result"]["content"][0]["text"] == "done"
    assert server.requests.inflight == {}


async def test_cancellation_flags_the_context_and_ends_the_call_without_a_response(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    started = asyncio.Event()
    seen: dict[str, Any] = {}

    async def wait_forever(ctx: tools.Context) -> str:
        started.set()
        try:
            await asyncio.sleep(WAIT * 2)
        finally:
            seen["cancelled"] = ctx.cancelled
        return "never"

    tools.tool(wait_forever, name="wait_forever", registry=registry)
    request, exchange = call(server, session, "wait_forever", Port())
    work = asyncio.ensure_future(server.requests.serve(server.stateful, request, exchange))
    await asyncio.wait_for(started.wait(), WAIT)
    note = Notification("notifications/cancelled", {"requestId": 7, "reason": "user"})
    assert await server.requests.client_message(session.id, note) is True
    assert await asyncio.wait_for(work, WAIT) is None
    assert seen == {"cancelled": True} and exchange.cancelled
    assert server.requests.inflight == {}


async def test_a_shutdown_cancellation_is_not_swallowed(server: MCPServer, registry: Registry, session: Session) -> None:
    started = register_waiting_tool(registry)
    request, exchange = call(server, session, "wait_forever", Port())
    work = asyncio.ensure_future(server.requests.serve(server.stateful, request, exchange, in_current_task=True))
    await asyncio.wait_for(started.wait(), WAIT)
    work.cancel()  # not the client: the server itself is going away
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(work, WAIT)
    assert not exchange.cancelled


async def test_the_clients_reply_reaches_the_waiting_tool_in_this_process(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    async def ask(ctx: tools.Context) -> str:
        answer = await ctx.elicit("Name?", {"type": "object", "properties": {"n": {"type": "string"}}})
        return str(answer["content"]["n"])

    tools.tool(ask, name="ask", registry=registry)

    async def reply(message: dict[str, Any]) -> None:
        if message.get("method") == "elicitation/create":
            answer = Response(message["id"], {"action": "accept", "content": {"n": "Ada"}})
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(server.requests.client_message(session.id, answer))
            )

    outbox = Outbox(reply)
    request, exchange = call(server, session, "ask", Port(emit=outbox.emit))
    response = await asyncio.wait_for(server.requests.serve(server.stateful, request, exchange), WAIT)
    assert response is not None and response["result"]["content"][0]["text"] == "Ada"
    assert [m["method"] for m in outbox.messages] == ["elicitation/create"]


async def test_replies_and_cancellations_for_requests_elsewhere_go_through_the_channel_layer(
    server: MCPServer, session: Session
) -> None:
    """Not running here: the message goes to the request's group (the consumer serving it on
    another worker hands it to that worker's lifecycle), and a cancellation is also noted in
    the cache for a call that joins its group late."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    token = request_token(41)
    await layer.group_add(request_group(session.id, token), channel)
    try:
        reply = Response(f"{token}-1", {"action": "decline"})
        assert await server.requests.client_message(session.id, reply) is True
        routed = await asyncio.wait_for(layer.receive(channel), WAIT)
        assert routed == {"type": "mcp.client.reply", "token": token, "id": f"{token}-1", "result": {"action": "decline"}}

        note = Notification("notifications/cancelled", {"requestId": 41, "reason": "bored"})
        assert await server.requests.client_message(session.id, note) is True
        routed = await asyncio.wait_for(layer.receive(channel), WAIT)
        assert routed == {"type": "mcp.client.cancel", "token": token, "reason": "bored"}
        assert await shared_cache().get(cancel_key(session.id, token)) == 1
    finally:
        await layer.group_discard(request_group(session.id, token), channel)


async def test_messages_that_name_no_request_are_dropped(server: MCPServer, session: Session) -> None:
    assert await server.requests.client_message(session.id, Response("not-ours", {})) is False
    bad = Notification("notifications/cancelled", {"requestId": True})
    assert await server.requests.client_message(session.id, bad) is False
    assert await server.requests.client_message(session.id, Notification("notifications/progress", {})) is False


async def test_a_layer_reply_reaches_the_request_on_this_worker(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    """What a consumer's ``mcp_client_reply`` handler does with a routed reply."""

    async def ask(ctx: tools.Context) -> str:
        answer = await ctx.elicit("Ok?", {"type": "object", "properties": {}})
        return str(answer["action"])

    tools.tool(ask, name="ask", registry=registry)

    async def reply(message: dict[str, Any]) -> None:
        routed = {"type": "mcp.client.reply", "token": exchange.token, "id": message["id"], "result": {"action": "cancel"}}
        asyncio.get_running_loop().call_soon(server.requests.layer_reply, session.id, routed)

    request, exchange = call(server, session, "ask", Port(emit=Outbox(reply).emit))
    response = await asyncio.wait_for(server.requests.serve(server.stateful, request, exchange), WAIT)
    assert response is not None and response["result"]["content"][0]["text"] == "cancel"


async def test_a_call_joins_its_group_late_and_then_sees_an_earlier_cancellation(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    """A cancel that arrived before the call was reachable (noted in the cache) still ends it."""
    joined: list[str] = []

    async def join(group: str) -> None:
        joined.append(group)

    async def leave(group: str) -> None:
        joined.remove(group)

    async def sleepy() -> str:
        await asyncio.sleep(WAIT * 2)
        return "never"

    tools.tool(sleepy, name="sleepy", registry=registry)
    request, exchange = call(server, session, "sleepy", Port(join=join, leave=leave), request_id="late")
    await shared_cache().set(cancel_key(session.id, exchange.token), 1, 60)
    response = await asyncio.wait_for(server.requests.serve(server.stateful, request, exchange), WAIT)
    assert response is None and exchange.cancelled
    assert joined == []  # left its group when it ended


async def test_a_stateless_request_is_cancelled_through_its_exchange(server: MCPServer, registry: Registry) -> None:
    started = register_waiting_tool(registry)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    request_facts = facts(
        "tools/call",
        {"name": "wait_forever", "arguments": {}, "_meta": meta},
        headers=(("mcp-method", "tools/call"), ("mcp-name", "wait_forever"), ("mcp-protocol-version", "2026-07-28")),
    )
    era = server.stateless
    exchange = era.exchange(request_facts, era.admit(request_facts))
    work = asyncio.ensure_future(server.requests.serve(era, request_facts.request, exchange))
    await asyncio.wait_for(started.wait(), WAIT)
    assert server.requests.cancel_exchange(exchange, "the client closed the response stream")
    assert await asyncio.wait_for(work, WAIT) is None
    assert server.requests.inflight == {}


async def test_a_detached_request_is_registered_under_its_key_and_cancelled_by_it(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    """The seam for tasks: work that outlives its HTTP exchange, reachable by an id of its own."""
    started = register_waiting_tool(registry)
    request, exchange = call(server, session, "wait_forever", Port())
    task = server.requests.detach(server.stateful, request, exchange, key="task-1")
    await asyncio.wait_for(started.wait(), WAIT)
    assert set(server.requests.inflight) == {"task-1"}
    assert server.requests.cancel("task-1", "tasks/cancel") is True
    assert await asyncio.wait_for(task, WAIT) is None and exchange.cancelled
    assert server.requests.inflight == {} and server.requests.cancel("task-1", "again") is False


# -- draining ----------------------------------------------------------------------------------
async def test_a_drain_lets_quick_calls_finish_and_cuts_the_rest_off_with_an_error(
    server: MCPServer, registry: Registry, session: Session
) -> None:
    from mcp_sse.audit import get_recorder
    from mcp_sse.models import CallLog

    started = register_waiting_tool(registry)

    async def quick() -> str:
        await asyncio.sleep(0.1)
        return "done"

    tools.tool(quick, name="quick_one", registry=registry)
    told: list[str] = []

    async def listener() -> None:
        told.append("drain")
        stream_ended()  # a held stream ends when told: the drain does not wait for it

    unregister = server.requests.on_drain(listener)
    unregister()  # an unregistered listener is not told
    stream_ended = server.requests.on_drain(listener)
    slow_request, slow_exchange = call(server, session, "wait_forever", Port(), request_id=1)
    quick_request, quick_exchange = call(server, session, "quick_one", Port(), request_id=2)
    slow = asyncio.ensure_future(server.requests.serve(server.stateful, slow_request, slow_exchange))
    fast = asyncio.ensure_future(
        server.requests.serve(server.stateful, quick_request, quick_exchange, in_current_task=True)
    )
    await asyncio.wait_for(started.wait(), WAIT)
    loop = asyncio.get_running_loop()
    began = loop.time()
    from mcp_sse.server.drain import is_draining

    assert not is_draining()
    drain = asyncio.ensure_future(server.requests.drain(0.5, "stopping for a test"))
    await asyncio.sleep(0.01)
    assert server.requests.draining and told == ["drain"] and is_draining()
    assert (await fast)["result"]["content"][0]["text"] == "done"
    answer = await slow
    assert answer["id"] == 1 and answer["error"]["data"] == {"reason": "shutdown"}
    assert answer["error"]["message"] == "stopping for a test"
    assert 0.45 <= loop.time() - began < 2
    assert await drain == [f"{session.id}:{slow_exchange.token}"]
    assert server.requests.idle and loop.time() - began < 1
    server.requests.draining = False  # is_draining() looks at every server object of the process
    await get_recorder().flush()
    cut = CallLog.objects.filter(tool="wait_forever", error="stopping for a test")
    assert [row.outcome async for row in cut] == ["cancelled"]
    assert await CallLog.objects.filter(tool="quick_one", outcome="ok").acount() == 1
