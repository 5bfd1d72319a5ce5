"""The benchmark harness's arithmetic: medians of rounds and the profile summary (no servers)."""

from __future__ import annotations

from benchmarks.scenarios import LoadResult, attach_ratios, median_rounds, summarize_profile


def run(server: str, calls_per_s: float, round_no: int, status: str = "ok") -> LoadResult:
    return LoadResult(server=server, transport="http-json", concurrency=16, status=status,
                      calls_per_s=calls_per_s, round=round_no, baseline=None if server == "a" else "a")  # fmt: skip


def test_median_rounds_keeps_the_middle_round_and_every_rounds_rate() -> None:
    merged = median_rounds([run("a", 900, 1), run("a", 1500, 2), run("a", 1000, 3), run("b", 500, 1)])
    a = next(r for r in merged if r.server == "a")
    assert a.calls_per_s == 1000 and a.round == 3
    assert a.rounds_calls_per_s == [900, 1500, 1000]
    attach_ratios(merged)
    b = next(r for r in merged if r.server == "b")
    assert b.vs_baseline["calls_per_s"] == 0.5


def test_median_rounds_with_an_even_count_takes_the_lower_middle_and_notes_failures() -> None:
    merged = median_rounds([run("a", 800, 1), run("a", 1200, 2), run("a", 0, 3, status="error")])
    assert merged[0].calls_per_s == 800
    assert "1 of 3 rounds failed" in merged[0].note


def test_idle_pool_thread_samples_are_not_counted_as_cpu() -> None:
    thread = "Thread._bootstrap (threading.py:995);Thread.run (threading.py:975)"
    stacks = [
        ((thread + ";_worker (concurrent/futures/thread.py:81)").split(";"), 20),  # waiting for work
        ((thread + ";ToolThreads._work (mcp_sse/registry/threads.py:101)").split(";"), 10),  # ours, waiting
        ((thread + ";_worker (concurrent/futures/thread.py:83);_write_now (mcp_sse/audit.py:190)").split(";"), 10),
        (["run (asyncio/events.py:80)", "post (mcp_sse/transports/streamable.py:200)"], 90),
    ]
    summary = summarize_profile(stacks)
    assert summary["samples"] == 100
    assert summary["idle_pool_thread_samples"] == 30
    assert dict(summary["buckets_pct"])["worker thread: call log writes (executemany)"] == 10.0
