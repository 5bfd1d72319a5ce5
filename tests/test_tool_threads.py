"""The thread pool sync tools run on (mcp_sse.registry.threads)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import threading
import time

import pytest

from mcp_sse.registry.threads import ToolThreads

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


async def test_results_exceptions_and_context_reach_the_caller() -> None:
    pool = ToolThreads(max_workers=4)
    marker.set("from the loop")

    def where(suffix: str) -> tuple[str, str]:
        return threading.current_thread().name, marker.get() + suffix

    name, seen = await pool.run(where, {"suffix": "!"})
    assert name.startswith("mcp-tool-") and name != threading.current_thread().name
    assert seen == "from the loop!"

    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await pool.run(fail, {})

    def stop() -> None:
        raise StopIteration("done")

    # asyncio futures cannot carry StopIteration: the caller gets a RuntimeError naming it.
    with pytest.raises(RuntimeError, match="StopIteration"):
        await pool.run(stop, {})


async def test_many_concurrent_calls_each_get_their_own_result() -> None:
    """Results are handed back in batches (one loop wake-up for several): none may be lost or
    crossed, even when they finish while the loop is delivering others."""
    pool = ToolThreads(max_workers=8)

    def square(n: int) -> int:
        if n % 7 == 0:
            time.sleep(0.001)
        return n * n

    results = await asyncio.gather(*(pool.run(square, {"n": n}) for n in range(500)))
    assert results == [n * n for n in range(500)]
    assert pool.started <= 8


async def test_a_blocked_call_never_holds_up_another_while_a_thread_can_start() -> None:
    """Four calls that can only finish together (a barrier) need four threads at once."""
    pool = ToolThreads(max_workers=4)
    barrier = threading.Barrier(4, timeout=5)
    done = await asyncio.wait_for(asyncio.gather(*(pool.run(barrier.wait, {}) for _ in range(4))), 10)
    assert sorted(done) == [0, 1, 2, 3]
    assert pool.started == 4


async def test_calls_beyond_the_limit_wait_for_a_free_thread() -> None:
    pool = ToolThreads(max_workers=2)
    running = 0
    most = 0
    lock = threading.Lock()

    def busy() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    await asyncio.gather(*(pool.run(busy, {}) for _ in range(8)))
    assert most == 2 and pool.started == 2


async def test_a_cancelled_call_leaves_the_pool_working() -> None:
    """The client cancelled: the caller stops waiting, the thread finishes on its own, and its
    late result is dropped without disturbing later calls."""
    pool = ToolThreads(max_workers=1)
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "late"

    call = asyncio.ensure_future(pool.run(slow, {}))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    release.set()
    assert await pool.run(lambda: "next", {}) == "next"
    assert finished.is_set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
async def test_a_forked_child_starts_its_own_threads() -> None:
    """A process forked after calls ran (a pre-forking server, multiprocessing) inherits the
    pool's bookkeeping but none of its threads: calls there must still run."""
    pool = ToolThreads(max_workers=2)
    assert await pool.run(lambda: "parent", {}) == "parent"
    assert pool.started == 1
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if a call completes
        signal.alarm(10)
        outcome: list[object] = []

        async def call_in_child() -> object:
            return await pool.run(lambda: "child", {})

        # A thread of its own: the forked thread still counts as inside the parent's loop.
        runner = threading.Thread(target=lambda: outcome.append(asyncio.run(call_in_child())))
        runner.start()
        runner.join(8)
        os._exit(0 if outcome == ["child"] else 1)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_the_setting_bounds_the_default_pool() -> None:
    from django.test import override_settings

    pool = ToolThreads()
    with override_settings(MCP_SSE={"SYNC_TOOL_THREADS": 3}):
        assert pool.limit() == 3
        barrier = threading.Barrier(3, timeout=5)
        await asyncio.wait_for(asyncio.gather(*(pool.run(barrier.wait, {}) for _ in range(3))), 10)
        await asyncio.gather(*(pool.run(lambda: time.sleep(0.01), {}) for _ in range(6)))
    assert pool.started == 3
    assert pool.limit() == min(32, (os.cpu_count() or 1) + 4)
