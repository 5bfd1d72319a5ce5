"""Stopping a worker gracefully (restarts, deploys): SIGTERM drains the process, then stops it.

On SIGTERM (or SIGINT) the process, before its server's own handler stops it:

1. stops taking new sessions and requests: they get 503 with ``Retry-After``, so a load
   balancer or client goes to another worker (responses and cancellations for requests
   already running are still taken);
2. ends its held streams with a final event telling the client to reconnect (an SSE ``retry:``
   field; 2025-11-25 POST streams are closed for polling and resumed on another worker, which
   keeps hearing their events through the channel layer);
3. lets requests in flight finish for up to ``DRAIN_SECONDS``, then cuts off the rest: their
   clients get a JSON-RPC error (``data.reason`` ``"shutdown"``) and the call log a row saying so;
4. flushes the call log, and hands the signal to the server (Daphne / uvicorn), which exits.

A second signal during the drain stops at once. :func:`install_signal_handlers` chains our
handler in front of the server's; ``python -m mcp_sse.daphne_server`` installs it at start-up,
``with_mcp()`` applications on the ASGI ``lifespan`` start-up (uvicorn, hypercorn) and, under
plain ``daphne`` (no lifespan), the first request (:func:`install_under_twisted`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ..audit import get_recorder
from ..conf import mcp_settings
from .requests import lifecycles

logger = logging.getLogger("mcp_sse")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def cut_reason(seconds: float) -> str:
    return f"The server shut down before this request finished (cut off after a {seconds:g} s drain): send it again"


async def drain_process(seconds: float | None = None) -> int:
    """Drain every server object of this process (see the module's docstring), then flush the
    call log; the number of requests cut off."""
    limit = float(mcp_settings.DRAIN_SECONDS if seconds is None else seconds)
    reason = cut_reason(limit)
    cut = await asyncio.gather(*(lifecycle.drain(limit, reason) for lifecycle in lifecycles()))
    count = sum(len(keys) for keys in cut)
    if count:
        logger.warning("mcp_sse: %d requests were still running after %g s and were cut off", count, limit)
    try:
        await get_recorder().flush()
    except Exception:
        logger.exception("mcp_sse: could not flush the call log while stopping")
    return count


def is_draining() -> bool:
    """Whether this process has started stopping (e.g. for a readiness check: a load balancer
    should stop sending it new work)."""
    return any(lifecycle.draining for lifecycle in lifecycles())


class GracefulStop:
    """This process's stop sequence: drain on the first signal, then the server's own handler."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.previous: dict[int, Any] = {}
        self.drain: asyncio.Task[int] | None = None
        self.handed_over = False

    def install(self) -> None:
        for signum in SIGNALS:
            self.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # In the main thread, between two bytecodes of whatever runs: only schedule.
        if self.drain is None:
            self.loop.call_soon_threadsafe(self.start, signum)
        else:
            self.loop.call_soon_threadsafe(self.hand_over, signum)  # a second signal: stop now

    def start(self, signum: int) -> None:
        if self.drain is None:
            logger.warning(
                "mcp_sse: %s: draining for up to %g s before stopping",
                signal.Signals(signum).name,
                float(mcp_settings.DRAIN_SECONDS),
            )
            self.drain = self.loop.create_task(self.run(signum))

    def started(self) -> asyncio.Task[int]:
        """The drain (started now if no signal started it), e.g. for a lifespan shutdown."""
        if self.drain is None:
            self.drain = self.loop.create_task(drain_process())
        return self.drain

    async def run(self, signum: int) -> int:
        try:
            return await drain_process()
        except Exception:
            logger.exception("mcp_sse: the drain failed")
            return 0
        finally:
            self.hand_over(signum)

    def hand_over(self, signum: int) -> None:
        """Let the server's own handler stop the process."""
        if self.handed_over:
            return
        self.handed_over = True
        previous = self.previous.get(signum)
        if callable(previous):
            previous(signum, None)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        # SIG_IGN (or a handler not set from Python): the server did not mean to stop on it.


_stop: GracefulStop | None = None


def install_signal_handlers(loop: asyncio.AbstractEventLoop | None = None) -> GracefulStop | None:
    """Drain on SIGTERM/SIGINT before the handlers installed so far (the server's) run.

    Call it once the server has installed its own handlers, from the main thread (signals are
    delivered there), with the event loop the application runs on. Idempotent: the process has
    one stop sequence. None when it cannot be installed (not the main thread).
    """
    global _stop
    if _stop is not None:
        return _stop
    if threading.current_thread() is not threading.main_thread():
        return None
    _stop = GracefulStop(loop or asyncio.get_running_loop())
    _stop.install()
    return _stop


def graceful_stop() -> GracefulStop | None:
    """The installed stop sequence, if any."""
    return _stop


_first_request_seen = False


def install_under_twisted() -> None:
    """Called by every request, acting on the process's first: under a running Twisted reactor
    (plain ``daphne``, which has no lifespan to start us), install now, in front of the handlers
    the reactor installed as it started."""
    global _first_request_seen
    if _first_request_seen:
        return
    _first_request_seen = True
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and getattr(reactor, "running", False):
        install_signal_handlers()
