"""A bounded, shared log of SSE events, for ``Last-Event-ID`` resumption on any worker.

Event ids are ``<stream id>.<sequence>``, so an id names the stream it belongs to and a resumed
stream replays only its own events. Each event is a cache entry with a TTL; only the newest
``EVENT_STORE_MAX_EVENTS`` of a stream are replayed.
"""

from __future__ import annotations

from typing import Any

from ..conf import mcp_settings
from ..store import shared_cache


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    stream_id, sep, seq = event_id.strip().rpartition(".")
    if not sep or not stream_id or not seq.isdigit() or len(stream_id) > 64:
        return None
    return stream_id, int(seq)


class EventStore:
    @property
    def cache(self) -> Any:
        return shared_cache()

    def _prefix(self, session_id: str, stream_id: str) -> str:
        return f"mcp_sse:ev:{session_id}:{stream_id}"

    async def append(
        self,
        session_id: str,
        stream_id: str,
        first_seq: int,
        messages: list[dict[str, Any] | None],
        *,
        final: bool = False,
        request_ids: list[Any] | None = None,
    ) -> None:
        """Store events ``first_seq``, ``first_seq + 1``, ... of a stream (a None message is the
        priming event), and with ``final`` that the stream ends there: one store write. The
        events go first, then ``last`` (and ``end``), so a reader never sees a number whose event
        is missing. ``request_ids``: the requests the stream answers (see :meth:`request_ids`)."""
        prefix = self._prefix(session_id, stream_id)
        entries: dict[str, Any] = {f"{prefix}:{first_seq + n}": {"m": m} for n, m in enumerate(messages)}
        if request_ids is not None:
            entries[f"{prefix}:requests"] = request_ids
        last = first_seq + len(messages) - 1
        entries[f"{prefix}:last"] = last
        if final:
            entries[f"{prefix}:end"] = last
        await self.cache.set_many(entries, mcp_settings.EVENT_STORE_TTL)

    async def mark_finished(self, session_id: str, stream_id: str, seq: int) -> None:
        await self.cache.set(f"{self._prefix(session_id, stream_id)}:end", seq, mcp_settings.EVENT_STORE_TTL)

    async def request_ids(self, session_id: str, stream_id: str) -> list[Any]:
        """The ids of the requests a POST's stream answers: whoever finds its producer dead
        answers them with an error."""
        return list(await self.cache.get(f"{self._prefix(session_id, stream_id)}:requests") or [])

    async def exists(self, session_id: str, stream_id: str) -> bool:
        return await self.cache.get(f"{self._prefix(session_id, stream_id)}:last") is not None

    async def after(
        self, session_id: str, stream_id: str, seq: int
    ) -> tuple[list[tuple[int, dict[str, Any] | None]], bool]:
        """Events after ``seq`` (oldest first) and whether the stream has ended."""
        prefix = self._prefix(session_id, stream_id)
        head = await self.cache.get_many([f"{prefix}:last", f"{prefix}:end"])
        last = head.get(f"{prefix}:last")
        if last is None:
            return [], False
        first = max(seq + 1, last - mcp_settings.EVENT_STORE_MAX_EVENTS + 1)
        keys = [f"{prefix}:{n}" for n in range(first, last + 1)]
        found = await self.cache.get_many(keys) if keys else {}
        events = [(n, found[f"{prefix}:{n}"]["m"]) for n in range(first, last + 1) if f"{prefix}:{n}" in found]
        return events, f"{prefix}:end" in head
