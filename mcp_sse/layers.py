"""An in-memory channel layer for one process that stays fast with thousands of open streams.

Channels' ``InMemoryChannelLayer`` sweeps every channel and group for expired entries on each
``receive()`` and ``group_send()``: with N held streams every message costs O(N) (1.4 ms per
receive at 5,000 streams), which slows every request as streams accumulate. This subclass
sweeps at most once per ``SWEEP_INTERVAL`` seconds; messages still expire, up to that much later.

    CHANNEL_LAYERS = {"default": {"BACKEND": "mcp_sse.layers.InMemoryChannelLayer"}}

Like its parent it serves a single process; for several workers use ``mcp_sse.layers.RedisChannelLayer``
(channels-redis, with messages between consumers of one process kept out of Redis: see
:mod:`mcp_sse.redis_layer`).
"""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    SWEEP_INTERVAL = 1.0

    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.SWEEP_INTERVAL:
            return
        self._last_sweep = now
        super()._clean_expired()  # type: ignore[misc]  # private in the stubs, present at runtime


def __getattr__(name: str) -> object:
    # ``mcp_sse.layers.RedisChannelLayer`` without importing channels_redis for those who use
    # the in-memory layer only (channels_redis is the ``redis`` extra).
    if name == "RedisChannelLayer":
        from .redis_layer import RedisChannelLayer

        return RedisChannelLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
