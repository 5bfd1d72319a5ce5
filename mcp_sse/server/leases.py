"""Liveness of work held by one worker process, recorded in the shared store.

A worker that produces something other workers wait on (a request's answer that a resumed
stream replays, a durable task) holds a :class:`Lease` on it: a key in the shared cache with a
short expiry that the holder renews while it works. Any worker can then tell, with one read,
whether the producer is still there: an expired lease means the process died (``kill -9``, a
lost machine) without finishing, so waiters can report failure instead of waiting for ever.

Liveness is recorded, not guessed from silence: a slow tool keeps its lease for as long as its
process runs, however long it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from types import TracebackType
from typing import Any

from ..conf import mcp_settings
from ..protocol.errors import INTERNAL_ERROR
from ..store import shared_cache

logger = logging.getLogger("mcp_sse")

# This process, as written into the leases it holds (for operators reading the store).
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
LOST_WORKER_REASON = "worker-lost"


def lease_key(name: str) -> str:
    return f"mcp:lease:{name}"


def worker_lost_error(message: str) -> dict[str, Any]:
    """The JSON-RPC error of work whose worker died before it finished (its lease expired)."""
    return {"code": INTERNAL_ERROR, "message": message, "data": {"reason": LOST_WORKER_REASON}}


async def is_alive(name: str) -> bool:
    """Whether some worker still holds the lease ``name``."""
    return await shared_cache().get(lease_key(name)) is not None


class Lease:
    """Holds ``name`` while the ``async with`` block runs, renewing it every third of its term.

    ``seconds`` defaults to the ``LEASE_SECONDS`` setting: the longest a dead holder goes
    unnoticed. Leaving the block releases the lease; a holder that dies simply stops renewing.
    Store errors while renewing are logged and retried at the next renewal: a Redis blip must
    not kill the work the lease describes.
    """

    def __init__(self, name: str, seconds: float | None = None) -> None:
        self.name = name
        self.key = lease_key(name)
        self.seconds = float(seconds if seconds is not None else mcp_settings.LEASE_SECONDS)
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, *, exclusive: bool = False) -> bool:
        """Take the lease (and start renewing it). ``exclusive``: only if no live holder has it
        (False then, and nothing is renewed); otherwise it is taken over unconditionally."""
        if exclusive:
            if not await shared_cache().add(self.key, WORKER_ID, self.seconds):
                return False
        else:
            await shared_cache().set(self.key, WORKER_ID, self.seconds)
        self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return True

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        try:
            await shared_cache().delete(self.key)
        except Exception:  # the lease then expires by itself
            logger.warning("mcp_sse: could not release lease %s", self.name, exc_info=True)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await shared_cache().set(self.key, WORKER_ID, self.seconds)
            except Exception:
                logger.warning("mcp_sse: could not renew lease %s", self.name, exc_info=True)

    async def __aenter__(self) -> Lease:
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        await self.release()
        return None
