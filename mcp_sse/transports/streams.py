"""The one stream loop: every held SSE response (legacy ``/sse``, the Streamable GET stream and
its resumption, the 2026 ``subscriptions/listen`` stream) is a :class:`Stream`.

A stream opens (response head, priming event, replay of stored events), then one loop waits
for whichever comes first: a channel-layer message for it (handled by its method named after the
message type, as Channels does: ``mcp.list_changed`` -> ``mcp_list_changed``; a handler returning
False ends the stream), the client disconnecting, the channel layer failing, the stream being
ended (:meth:`Stream.end_soon`: by default when the worker drains, after a final event telling
the client to reconnect), or ``KEEPALIVE_INTERVAL`` of silence (a keep-alive comment; group
memberships renewed).

:class:`EventLog` numbers and stores the events of a resumable stream (2025-03-26 and later), so
that ``GET`` + ``Last-Event-ID`` replays them on any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ..conf import mcp_settings
from ..notify import revokes
from ..protocol import sse
from ..server.events import EventStore
from .base import handler_name

if TYPE_CHECKING:
    from ..context import Caller
    from .base import MCPConsumer

logger = logging.getLogger("mcp_sse")

# Messages waiting for a slow stream; beyond this they are dropped (with a warning).
INBOX_LIMIT = 1000
KEEP_ALIVE = sse.encode_comment("keep-alive")


class Stream:
    """A held SSE response fed by channel-layer messages."""

    def __init__(self, consumer: MCPConsumer) -> None:
        self.consumer = consumer
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=INBOX_LIMIT)
        self.ending = asyncio.Event()

    def offer(self, message: dict[str, Any]) -> None:
        """A channel-layer message for this stream (called by the consumer's layer reader)."""
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("mcp_sse: a %s is not keeping up; dropping a message", type(self).__name__)

    # -- hooks ----------------------------------------------------------------------------
    async def open(self) -> bool:
        """Start the response (priming, replay); False when the stream is already complete."""
        await self.consumer.start_sse()
        return True

    async def on_idle(self) -> bool:
        """After ``KEEPALIVE_INTERVAL`` of silence; False ends the stream."""
        return await self.consumer.write(KEEP_ALIVE)

    async def close(self) -> None:
        """Always called once the stream ends (however it ends)."""

    async def on_shutdown(self) -> None:
        """The server is shutting down (the consumer is being cancelled)."""

    async def on_drain(self) -> None:
        """The worker is stopping (see :mod:`mcp_sse.server.drain`): by default the stream ends
        at once with :meth:`farewell`."""
        self.end_soon()

    def end_soon(self) -> None:
        """End the stream (with :meth:`farewell`) at the loop's next turn."""
        self.ending.set()

    async def farewell(self) -> None:
        """The last event of a stream the server ends: reconnect after ``SSE_RETRY_MS`` (the
        2025-11-25 polling hint; a resumable stream resumes with its Last-Event-ID)."""
        await self.consumer.write(sse.encode_event(None, retry_ms=mcp_settings.SSE_RETRY_MS))

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        consumer = self.consumer
        consumer.stream = self
        unregister = None
        try:
            if await self.open():
                unregister = consumer.server.requests.on_drain(self.on_drain)
                await self._loop()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.on_shutdown()), 1.0)
            raise
        finally:
            consumer.stream = None
            try:
                await self.close()
            finally:
                if unregister is not None:
                    unregister()
        await consumer.finish_response()

    async def _loop(self) -> None:
        consumer = self.consumer
        watcher = asyncio.ensure_future(consumer.watch_disconnect())
        ender = asyncio.ensure_future(self.ending.wait())
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(self.inbox.get())
                waits: set[asyncio.Future[Any]] = {getter, watcher, ender}
                reader = consumer.layer_task
                if reader is not None:
                    waits.add(reader)
                done, _ = await asyncio.wait(
                    waits, timeout=mcp_settings.KEEPALIVE_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    if await self.handle(getter.result()) is False:
                        return
                    continue
                getter.cancel()
                if watcher in done or consumer.disconnected.is_set() or consumer.response_finished:
                    return
                if ender in done:
                    await self.farewell()
                    return
                if reader is not None and reader in done:
                    # The channel layer failed: end the stream (the client reconnects and
                    # refetches) rather than keep it open while it can no longer hear anything.
                    logger.error("mcp_sse: %s lost its channel layer", type(self).__name__)
                    return
                await consumer.renew_groups()
                if await self.on_idle() is False:
                    return
        finally:
            watcher.cancel()
            ender.cancel()
            if getter is not None:
                getter.cancel()

    async def handle(self, message: dict[str, Any]) -> bool | None:
        name = handler_name(message.get("type"))
        handler = getattr(self, name, None) if name else None
        if handler is None:
            return None
        result: bool | None = await handler(message)
        return result


class SessionStream(Stream):
    """A stream that carries a session's server-initiated messages (legacy ``/sse`` and the
    Streamable GET stream): list changes, resource updates, messages sent to the session."""

    def __init__(self, consumer: MCPConsumer, session_id: str, caller: Caller) -> None:
        super().__init__(consumer)
        self.session_id = session_id
        self.caller = caller

    async def push(self, message: dict[str, Any]) -> bool:
        """Write one message on the stream; False if the client is gone."""
        raise NotImplementedError

    async def mcp_list_changed(self, message: dict[str, Any]) -> None:
        await self.push({"jsonrpc": "2.0", "method": f"notifications/{message['kind']}/list_changed"})

    async def mcp_resource_updated(self, message: dict[str, Any]) -> None:
        current = await self.consumer.server.sessions.get(self.session_id)
        if current is not None and message.get("uri") in current.subscriptions:
            await self.push(
                {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": message["uri"]}}
            )

    async def mcp_session_message(self, message: dict[str, Any]) -> None:
        await self.push(message["message"])

    async def mcp_session_closed(self, message: dict[str, Any]) -> bool:
        return False

    async def mcp_token_revoked(self, message: dict[str, Any]) -> bool:
        return not revokes(message, self.caller)


class EventLog:
    """The numbered, stored events of one resumable stream: ids ``<stream>.<seq>``."""

    def __init__(self, store: EventStore, session_id: str, stream_id: str, seq: int = 0) -> None:
        self.store = store
        self.session_id = session_id
        self.stream_id = stream_id
        self.seq = seq

    async def append(self, message: dict[str, Any] | None, *, final: bool = False) -> str:
        """Store the next event (None: the priming event) and return its id."""
        return (await self.append_many([message], final=final))[-1]

    async def append_many(
        self, messages: list[dict[str, Any] | None], *, final: bool = False, request_ids: list[Any] | None = None
    ) -> list[str]:
        """Store the next events in one store write (``final``: the stream ends with the last;
        ``request_ids``: the requests it answers); their ids."""
        first = self.seq + 1
        self.seq += len(messages)
        await self.store.append(self.session_id, self.stream_id, first, messages, final=final, request_ids=request_ids)
        return [f"{self.stream_id}.{n}" for n in range(first, self.seq + 1)]

    async def finish(self) -> None:
        await self.store.mark_finished(self.session_id, self.stream_id, self.seq)

    async def prime(self, consumer: MCPConsumer) -> None:
        """The priming event (2025-11-25+): an id and empty data, so the client can resume from
        the start, and the reconnection delay."""
        event_id = await self.append(None)
        await consumer.write_event(None, event_id=event_id, retry_ms=mcp_settings.SSE_RETRY_MS)

    async def stored(self, after: int) -> tuple[list[tuple[int, dict[str, Any] | None]], bool]:
        """The stored events after ``after`` (oldest first) and whether the stream has ended."""
        return await self.store.after(self.session_id, self.stream_id, after)

    async def exists(self) -> bool:
        return await self.store.exists(self.session_id, self.stream_id)

    async def request_ids(self) -> list[Any]:
        return await self.store.request_ids(self.session_id, self.stream_id)

    async def replay(self, consumer: MCPConsumer, events: list[tuple[int, dict[str, Any] | None]]) -> None:
        """Write stored events (from :meth:`stored`) again, with their ids."""
        for number, message in events:
            if message is not None:
                await consumer.write_event(message, event_id=f"{self.stream_id}.{number}")
            self.seq = max(self.seq, number)
