"""The thread pool sync tools run on.

With ``loop.run_in_executor()`` a trivial sync tool cost about 25 µs of CPU per call more than
the same tool written ``async`` (under load, 294 vs 269 µs per call; benchmarks/PROFILE.md): a
``concurrent.futures.Future`` with its own lock and condition, an asyncio future chained to it by
callbacks, and a wake-up of the event loop through its self-pipe for every result. Here a call
is one asyncio future and a queued tuple; a worker hands the outcome back through a per-loop
inbox, and the loop is woken once for however many results have finished since it last looked
(paired under uvicorn: 307 -> 273 µs per call).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

from ..conf import mcp_settings

# As many threads as the default executor would use: sync tools may block on I/O.
DEFAULT_MAX_WORKERS = min(32, (os.cpu_count() or 1) + 4)


class LoopInbox:
    """Outcomes finished in worker threads, waiting for one event loop to pick them up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.finished: collections.deque[tuple[asyncio.Future[Any], bool, Any]] = collections.deque()
        self.wake_pending = False

    def post(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """From a worker thread. Appending before reading the flag, and the loop clearing the
        flag before emptying the queue, means no outcome can be left behind unseen."""
        self.finished.append((future, ok, value))
        if not self.wake_pending:
            self.wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self.deliver)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def deliver(self) -> None:
        """On the loop: settle every future whose call has finished."""
        self.wake_pending = False
        finished = self.finished
        while finished:
            future, ok, value = finished.popleft()
            if future.done():  # cancelled while the thread ran
                continue
            if ok:
                future.set_result(value)
            elif isinstance(value, StopIteration):  # asyncio futures refuse to carry this one
                future.set_exception(RuntimeError(f"the tool raised StopIteration: {value}"))
            else:
                future.set_exception(value)


class ToolThreads:
    """Worker threads started on demand (up to ``max_workers``, by default the
    ``SYNC_TOOL_THREADS`` setting), kept for the process's life."""

    def __init__(self, max_workers: int | None = None) -> None:
        # None: the SYNC_TOOL_THREADS setting, read when a thread is about to start.
        self.max_workers = max_workers
        self._reset()
        # A forked child has none of the parent's threads: it starts over with its own. (A weak
        # reference: fork hooks cannot be unregistered, and pools made in tests come and go.)
        reset = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(reset))

    def _reset(self) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # One permit per worker waiting for a job: a new job takes one or starts a thread, so a
        # job never waits behind another one while a thread could still be started.
        self.idle = threading.Semaphore(0)
        self.started = 0
        self.start_lock = threading.Lock()
        self.inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopInbox] = weakref.WeakKeyDictionary()

    def run(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Start ``func(**kwargs)`` in a worker thread (in a copy of the current context)."""
        loop = asyncio.get_running_loop()
        inbox = self.inboxes.get(loop)
        if inbox is None:
            inbox = self.inboxes[loop] = LoopInbox(loop)
        future: asyncio.Future[Any] = loop.create_future()
        self.jobs.put((inbox, future, contextvars.copy_context(), func, kwargs))
        if not self.idle.acquire(blocking=False):
            self._start_worker()
        return future

    def limit(self) -> int:
        if self.max_workers is not None:
            return self.max_workers
        configured = mcp_settings.SYNC_TOOL_THREADS
        return int(configured) if configured else DEFAULT_MAX_WORKERS

    def _start_worker(self) -> None:
        limit = self.limit()
        with self.start_lock:
            if self.started >= limit:
                return  # the job waits for the next free worker
            self.started += 1
            number = self.started
        threading.Thread(target=self._work, name=f"mcp-tool-{number}", daemon=True).start()

    def _work(self) -> None:
        jobs = self.jobs
        while True:
            inbox, future, context, func, kwargs = jobs.get()
            try:
                close_old_connections()  # like a request: no stale or over-age connection here
                try:
                    value = context.run(func, **kwargs)
                finally:
                    close_old_connections()
            except BaseException as exc:  # handed to the awaiting call, as an executor would
                inbox.post(future, False, exc)
            else:
                inbox.post(future, True, value)
            del inbox, future, context, func, kwargs  # keep nothing alive while idle
            self.idle.release()


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


tool_threads = ToolThreads()
