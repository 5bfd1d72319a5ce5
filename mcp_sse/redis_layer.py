"""channels-redis, with messages between consumers of the same process kept out of Redis.

``channels_redis.core.RedisChannelLayer`` sends every message through Redis, even when the
consumer it is for runs in the sending process: a ``group_send`` costs four round trips
(prune, member list, prune, a Lua send) and its receipt four more (restore, ``BZPOPMIN``, back-up,
clean-up). With one worker, or a legacy POST that lands on the worker holding its stream, that
is most of the cost of a call. This subclass:

- delivers to members living in this process straight into their receive buffer (the same
  buffer channels-redis fills from Redis), after the same serialise/deserialise round trip a
  message through Redis makes, so payloads behave alike either way; capacity is enforced as
  in Redis (``send`` raises ``ChannelFull``, ``group_send`` drops and logs);
- reads the group's members in one round trip (prune and list, pipelined with the lookups of
  concurrent sends: see :class:`mcp_sse.store.Pipeliner`), and sends to the members in other
  processes with one Lua call per Redis server (prune, capacity, add, expire);
- reads this process's Redis inbox with one task shared by all its receivers, started by the
  first ``receive()`` and ending once nobody has received for a while, instead of the
  receiver holding a lock blocking the others' local messages behind its ``BZPOPMIN``.

Group membership stays in Redis, so every worker still sees every member: messages to
members in other processes travel exactly as before.

    CHANNEL_LAYERS = {"default": {"BACKEND": "mcp_sse.layers.RedisChannelLayer",
                                  "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}}
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer as ChannelsRedisChannelLayer

from .store import Pipeliner, redis_resilience

logger = logging.getLogger("mcp_sse")

# Prunes expired messages, then adds one to each channel key below its capacity (KEYS: channel
# keys; ARGV: one message per key, one capacity per key, now, expiry). channels-redis does the
# prune in a separate pipeline before its own script: one round trip fewer here.
GROUP_SEND_LUA = """
local count = #KEYS
local now = tonumber(ARGV[2 * count + 1])
local expiry = tonumber(ARGV[2 * count + 2])
local over_capacity = 0
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class _ReaderFailed:
    """Put in a receiver's buffer when the shared inbox reader failed: its receive() raises."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class RedisChannelLayer(ChannelsRedisChannelLayer):
    # Seconds the shared inbox reader goes on after its last receiver returned (a consumer
    # handling one message usually asks for the next at once: no reader churn in between).
    READER_LINGER = 10.0
    # Seconds between sweeps of receive buffers that nobody reads any more.
    SWEEP_INTERVAL = 10.0
    # Seconds one BZPOPMIN of the inbox reader waits: well below redis-py's socket timeout (5 s
    # by default), which channels-redis's own 5 s wait races against when nothing arrives.
    INBOX_POLL = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local_prefix = f".{self.client_prefix}!"
        self._readers: dict[str, asyncio.Task[None]] = {}  # by process inbox name
        self._receiving: collections.Counter[str] = collections.Counter()  # receivers by channel
        self._last_receive: dict[str, float] = {}  # by channel: last receive() or first message
        self._inbox_receiving: collections.Counter[str] = collections.Counter()  # receivers by inbox
        self._inbox_last_receive: dict[str, float] = {}
        self._last_sweep = time.monotonic()
        self._group_send_script: Any = None
        self._pipeliners: dict[int, Pipeliner] = {}  # by connection (one per loop and server)

    def create_pool(self, index: int) -> Any:
        # Survive a Redis restart: idle connections health-checked, commands retried on a new
        # connection (options given in the host's configuration win).
        from channels_redis.utils import create_pool

        return create_pool({**redis_resilience(), **self.hosts[index]})

    def is_local(self, channel: str) -> bool:
        """Whether ``channel`` was made by this process's ``new_channel()``."""
        return "!" in channel and self.non_local_name(channel).endswith(self._local_prefix)

    # -- sending --------------------------------------------------------------------------
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if not self.is_local(channel):
            await super().send(channel, message)
            return
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        if not self._deliver_local(channel, self._copy(message)):
            raise ChannelFull()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        pipeliner = self._pipeliners.get(id(connection))
        if pipeliner is None or pipeliner.client is not connection:
            pipeliner = self._pipeliners[id(connection)] = Pipeliner(connection)
        # Pruned and listed in one round trip, shared with the lookups of concurrent sends.
        _pruned, members = await pipeliner.call_many(
            [("ZREMRANGEBYSCORE", key, 0, int(time.time()) - self.group_expiry), ("ZRANGE", key, 0, -1)]
        )
        remote = []
        local_copy: dict[str, Any] | None = None
        dropped = 0
        for raw in members:
            channel = raw.decode("utf8")
            if self.is_local(channel):
                local_copy = local_copy or self._copy(message)
                dropped += not self._deliver_local(channel, local_copy)
            else:
                remote.append(channel)
        if remote:
            dropped += await self._send_remote(remote, message)
        if dropped:
            logger.info("%s of %s channels over capacity in group %s", dropped, len(members), group)

    async def _send_remote(self, channels: list[str], message: dict[str, Any]) -> int:
        """Queue ``message`` in Redis for channels of other processes; how many were full."""
        by_connection, messages, capacities = self._map_channel_keys_to_connection(channels, message)
        over_capacity = 0
        for index, keys in by_connection.items():
            connection = self.connection(index)
            if self._group_send_script is None:
                self._group_send_script = connection.register_script(GROUP_SEND_LUA)
            args = [messages[k] for k in keys] + [capacities[k] for k in keys] + [time.time(), int(self.expiry)]
            over_capacity += int(await self._group_send_script(keys=keys, args=args, client=connection))
        return over_capacity

    def _copy(self, message: dict[str, Any]) -> dict[str, Any]:
        """What a receiver in another process would get: the message serialised and read back."""
        copied: dict[str, Any] = self.deserialize(self.serialize(message))
        return copied

    def _deliver_local(self, channel: str, message: dict[str, Any]) -> bool:
        """Put ``message`` in the receive buffer of a channel of ours; False when it is full."""
        self._sweep()
        buffer = self.receive_buffer[channel]
        if buffer.full() or buffer.qsize() >= self.get_capacity(channel):
            return False
        buffer.put_nowait(message)
        self._last_receive.setdefault(channel, time.monotonic())  # a buffer nobody reads ages from here
        return True

    def _sweep(self) -> None:
        """Forget buffers nobody has read for longer than a message may wait in Redis (their
        consumers are gone), at most once per ``SWEEP_INTERVAL``."""
        now = time.monotonic()
        if now - self._last_sweep < self.SWEEP_INTERVAL:
            return
        self._last_sweep = now
        for channel in list(self.receive_buffer):
            if not self._receiving[channel] and now - self._last_receive.get(channel, now) > self.expiry:
                del self.receive_buffer[channel]
                self._last_receive.pop(channel, None)
        for channel, last in list(self._last_receive.items()):
            if channel not in self.receive_buffer and now - last > self.expiry:
                del self._last_receive[channel]

    # -- receiving ------------------------------------------------------------------------
    async def receive(self, channel: str) -> dict[str, Any]:
        if not self.is_local(channel):
            message: dict[str, Any] = await super().receive(channel)
            return message
        assert self.require_valid_channel_name(channel)
        inbox = self.non_local_name(channel)
        buffer = self.receive_buffer[channel]
        self._receiving[channel] += 1
        self._inbox_receiving[inbox] += 1
        self._last_receive[channel] = self._inbox_last_receive[inbox] = time.monotonic()
        try:
            if buffer.empty():
                self._ensure_reader(inbox)
            item = await buffer.get()
        finally:
            self._last_receive[channel] = self._inbox_last_receive[inbox] = time.monotonic()
            self._inbox_receiving[inbox] -= 1
            self._receiving[channel] -= 1
            if not self._receiving[channel]:
                del self._receiving[channel]
                if buffer.empty() and self.receive_buffer.get(channel) is buffer:
                    del self.receive_buffer[channel]
        if isinstance(item, _ReaderFailed):
            raise item.error
        return item

    def _ensure_reader(self, inbox: str) -> None:
        reader = self._readers.get(inbox)
        if reader is not None and not reader.done():
            if reader.get_loop() is not asyncio.get_running_loop():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
            return
        self._readers[inbox] = asyncio.get_running_loop().create_task(self._read_inbox(inbox))

    def _idle(self, inbox: str) -> bool:
        """Nobody of ``inbox`` waits, and nobody has received for ``READER_LINGER`` seconds."""
        if self._inbox_receiving[inbox] > 0:
            return False
        return time.monotonic() - self._inbox_last_receive.get(inbox, 0.0) > self.READER_LINGER

    async def _read_inbox(self, inbox: str) -> None:
        """Move messages from this process's Redis inbox into the receivers' buffers."""
        try:
            while not self._idle(inbox):
                # Returns (None, None) when BZPOPMIN times out, so idleness is checked regularly.
                channel, message = await self._receive_once(inbox)
                if channel is None:
                    continue
                for name in channel if isinstance(channel, list) else [channel]:
                    self.receive_buffer[name].put_nowait(message)
                    self._last_receive.setdefault(name, time.monotonic())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # As channels-redis does, the failure reaches the receivers (they decide what next).
            failure = _ReaderFailed(error)
            for name in list(self._receiving):
                if self.non_local_name(name) == inbox:
                    self.receive_buffer[name].put_nowait(failure)
        finally:
            if self._readers.get(inbox) is asyncio.current_task():
                del self._readers[inbox]

    async def _receive_once(self, inbox: str) -> tuple[Any, Any]:
        """One ``BZPOPMIN`` on the inbox, as channels-redis's ``receive_single`` does it, but
        returning (None, None) at its timeout instead of looping."""
        index = self.consistent_hash(inbox)
        key = self.prefix + inbox
        await self.receive_clean_locks.acquire(key)
        try:
            content = await self._brpop_with_clean(index, key, timeout=self.INBOX_POLL)
        except BaseException:
            self.receive_clean_locks.release(key)
            raise
        if content is None:
            self.receive_clean_locks.release(key)
            return None, None
        cleaner = asyncio.ensure_future(self._clean_receive_backup(index, key))
        self.receive_cleaners.append(cleaner)

        def cleaned(task: asyncio.Future[Any]) -> None:
            self.receive_cleaners.remove(task)
            self.receive_clean_locks.release(key)

        cleaner.add_done_callback(cleaned)
        message = self.deserialize(content)
        channel = message.pop("__asgi_channel__", inbox)
        return channel, message

    # -- groups and clean-up ----------------------------------------------------------------
    async def group_add(self, group: str, channel: str) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        key = self._group_key(group)
        pipeline = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipeline.zadd(key, {channel: time.time()})
        pipeline.expire(key, self.group_expiry)
        await pipeline.execute()

    async def close_pools(self) -> None:
        for reader in list(self._readers.values()):
            reader.cancel()
        self._readers.clear()
        await super().close_pools()
