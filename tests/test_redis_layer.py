"""``mcp_sse.layers.RedisChannelLayer`` over a real Redis: members in this process get messages
without Redis, members in other processes through it, as channels-redis delivers them.

Two layer instances stand for two worker processes: each has its own client prefix (its own
process inbox in Redis), exactly as two Daphne processes would; they share only Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.exceptions import ChannelFull

from mcp_sse.layers import RedisChannelLayer

pytestmark = pytest.mark.redis

WAIT = 10.0


def make_layer(redis_url: str, prefix: str, **config: Any) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[redis_url], prefix=prefix, **config)


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[tuple[RedisChannelLayer, RedisChannelLayer]]:
    prefix = f"t-layer-{uuid.uuid4().hex[:8]}"
    a, b = make_layer(redis_url, prefix), make_layer(redis_url, prefix)
    yield a, b
    await a.flush()
    await b.close_pools()


class SendCounter:
    """Counts what a layer sends through Redis to other processes' inboxes."""

    def __init__(self, layer: RedisChannelLayer) -> None:
        self.calls: list[list[str]] = []
        original = layer._send_remote

        async def counted(channels: list[str], message: dict[str, Any]) -> int:
            self.calls.append(list(channels))
            return await original(channels, message)

        layer._send_remote = counted  # type: ignore[method-assign]


async def inbox_size(layer: RedisChannelLayer, channel: str) -> int:
    key = layer.prefix + layer.non_local_name(channel)
    return int(await layer.connection(0).zcard(key))


async def test_a_local_member_gets_the_message_without_redis(workers: tuple[RedisChannelLayer, ...]) -> None:
    a, _b = workers
    counter = SendCounter(a)
    channel = await a.new_channel()
    await a.group_add("g1", channel)
    await a.group_send("g1", {"type": "mcp.test", "n": 1})
    # Local delivery: nothing queued in Redis for our process, nothing sent remotely (fails if
    # the message went through the process inbox as plain channels-redis does).
    assert await inbox_size(a, channel) == 0
    assert counter.calls == []
    assert await asyncio.wait_for(a.receive(channel), WAIT) == {"type": "mcp.test", "n": 1}
    await a.send(channel, {"type": "mcp.test", "n": 2})
    assert await inbox_size(a, channel) == 0
    assert await asyncio.wait_for(a.receive(channel), WAIT) == {"type": "mcp.test", "n": 2}


async def test_members_in_another_process_get_it_through_redis(workers: tuple[RedisChannelLayer, ...]) -> None:
    a, b = workers
    counter = SendCounter(a)
    on_a, on_b = await a.new_channel(), await b.new_channel()
    await a.group_add("g2", on_a)
    await b.group_add("g2", on_b)
    await a.group_send("g2", {"type": "mcp.test", "from": "a"})
    assert counter.calls == [[on_b]]  # only B's member went through Redis
    assert await asyncio.wait_for(b.receive(on_b), WAIT) == {"type": "mcp.test", "from": "a"}
    assert await asyncio.wait_for(a.receive(on_a), WAIT) == {"type": "mcp.test", "from": "a"}
    # And the other way round, with a direct send too.
    await b.group_send("g2", {"type": "mcp.test", "from": "b"})
    await b.send(on_a, {"type": "mcp.test", "direct": True})
    assert await asyncio.wait_for(a.receive(on_a), WAIT) == {"type": "mcp.test", "from": "b"}
    assert await asyncio.wait_for(a.receive(on_a), WAIT) == {"type": "mcp.test", "direct": True}
    assert await asyncio.wait_for(b.receive(on_b), WAIT) == {"type": "mcp.test", "from": "b"}
    # A member that left gets nothing more.
    await b.group_discard("g2", on_b)
    await a.group_send("g2", {"type": "mcp.test", "n": 3})
    assert counter.calls[-1:] == [[on_b]]  # the earlier send; none for this one
    assert await asyncio.wait_for(a.receive(on_a), WAIT) == {"type": "mcp.test", "n": 3}


async def test_a_local_receiver_is_not_held_up_by_the_redis_reader(workers: tuple[RedisChannelLayer, ...]) -> None:
    """The shared inbox reader sits in BZPOPMIN (5 s); local messages must not wait for it
    (channels-redis's lock holder would only see them when its BZPOPMIN returns)."""
    a, _b = workers
    first, second = await a.new_channel(), await a.new_channel()
    waiting = [asyncio.ensure_future(a.receive(c)) for c in (first, second)]
    await asyncio.sleep(0.2)  # both wait, the reader is in BZPOPMIN
    for n, channel in enumerate((first, second)):
        await a.send(channel, {"type": "mcp.test", "n": n})
    done = await asyncio.wait_for(asyncio.gather(*waiting), 1.0)
    assert done == [{"type": "mcp.test", "n": 0}, {"type": "mcp.test", "n": 1}]


async def test_local_messages_arrive_in_order_and_as_copies(workers: tuple[RedisChannelLayer, ...]) -> None:
    a, _b = workers
    channel = await a.new_channel()
    await a.group_add("g3", channel)
    sent = {"type": "mcp.test", "items": (1, 2), "nested": {"k": "v"}}
    for n in range(50):
        await a.group_send("g3", {"type": "mcp.test", "n": n})
    received = [await asyncio.wait_for(a.receive(channel), WAIT) for _ in range(50)]
    assert [m["n"] for m in received] == list(range(50))
    await a.send(channel, sent)
    got = await asyncio.wait_for(a.receive(channel), WAIT)
    # What a receiver in another process would see: msgpack turns tuples into lists, and the
    # receiver's dict is not the sender's.
    assert got == {"type": "mcp.test", "items": [1, 2], "nested": {"k": "v"}}
    got["nested"]["k"] = "changed"
    assert sent["nested"] == {"k": "v"}
    with pytest.raises(TypeError):  # not serialisable: refused here as it would be for Redis
        await a.send(channel, {"type": "mcp.test", "bad": object()})


async def test_capacity_is_enforced_for_local_members(redis_url: str) -> None:
    layer = make_layer(redis_url, f"t-layer-{uuid.uuid4().hex[:8]}", capacity=3)
    try:
        channel = await layer.new_channel()
        await layer.group_add("g4", channel)
        for n in range(5):  # beyond capacity: dropped, as channels-redis drops them
            await layer.group_send("g4", {"type": "mcp.test", "n": n})
        with pytest.raises(ChannelFull):  # a direct send to a full channel raises, as in Redis
            await layer.send(channel, {"type": "mcp.test", "n": 9})
        got = [await asyncio.wait_for(layer.receive(channel), WAIT) for _ in range(3)]
        assert [m["n"] for m in got] == [0, 1, 2]
    finally:
        await layer.flush()


async def test_buffers_nobody_reads_are_forgotten(redis_url: str) -> None:
    layer = make_layer(redis_url, f"t-layer-{uuid.uuid4().hex[:8]}", expiry=1)
    layer.SWEEP_INTERVAL = 0.0
    try:
        gone = await layer.new_channel()
        await layer.send(gone, {"type": "mcp.test"})  # its consumer never receives
        assert gone in layer.receive_buffer
        await asyncio.sleep(1.2)
        await layer.send(await layer.new_channel(), {"type": "mcp.test"})  # triggers the sweep
        assert gone not in layer.receive_buffer
    finally:
        await layer.flush()


async def test_a_failing_redis_reaches_the_receiver() -> None:
    """With Redis unreachable the receive() fails (the consumer then ends its stream) instead
    of waiting for ever; a local message still arrives once sent."""
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"], prefix="t-layer-dead")
    channel = await layer.new_channel()
    with pytest.raises(Exception, match=r"(?i)connect"):
        await asyncio.wait_for(layer.receive(channel), WAIT)
    await layer.send(channel, {"type": "mcp.test"})
    assert await asyncio.wait_for(layer.receive(channel), WAIT) == {"type": "mcp.test"}
    await layer.close_pools()


async def test_the_reader_stops_when_nobody_receives(redis_url: str) -> None:
    layer = make_layer(redis_url, f"t-layer-{uuid.uuid4().hex[:8]}")
    layer.READER_LINGER = 0.0
    try:
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.1)
        (reader,) = layer._readers.values()
        await layer.send(channel, {"type": "mcp.test"})
        await asyncio.wait_for(waiting, WAIT)
        await asyncio.wait_for(reader, WAIT)  # ends at its next BZPOPMIN timeout
        assert not layer._readers
    finally:
        await layer.flush()


async def test_an_idle_inbox_is_not_a_failure(workers: tuple[RedisChannelLayer, ...]) -> None:
    """Nothing arrives for longer than redis-py's 5 s socket timeout: the receiver keeps waiting
    and then gets the next message (a reader waiting 5 s in BZPOPMIN, as channels-redis does,
    timed out and ended every stream of the process)."""
    a, b = workers
    channel = await a.new_channel()
    waiting = asyncio.ensure_future(a.receive(channel))
    await asyncio.sleep(6.0)
    assert not waiting.done()
    await b.send(channel, {"type": "mcp.test", "late": True})
    assert await asyncio.wait_for(waiting, WAIT) == {"type": "mcp.test", "late": True}
