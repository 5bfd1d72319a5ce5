"""The measurements: closed-loop call load, idle stream capacity, progress delivery, profiling."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .httpclient import HTTPProtocolError
from .mcpclient import LegacySession, MCPCallError, StatelessSession, StreamableSession
from .servers import CLIENT_CORE, HOST, SERVER_CORE, RunningServer, core_seconds, cpu_seconds, redis_cpu_seconds

# Transports a load run can use (what each server supports is in __main__.SERVER_TRANSPORTS).
HTTP_JSON = "http-json"  # stateful Streamable HTTP, echo, JSON reply
HTTP_SSE = "http-sse"  # stateful Streamable HTTP, slow_echo(seconds=0) + progressToken: SSE reply
STATELESS = "stateless"  # 2026-07-28, echo
LEGACY = "legacy-sse"  # 2024-11-05 HTTP+SSE, echo
TRANSPORTS = (HTTP_JSON, HTTP_SSE, STATELESS, LEGACY)

AnySession = StreamableSession | StatelessSession | LegacySession
CALL_ERRORS = (MCPCallError, HTTPProtocolError, OSError, ValueError, asyncio.TimeoutError)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)
    if not values:
        return {}
    return {
        "p50_ms": percentile(values, 0.50) * 1000,
        "p95_ms": percentile(values, 0.95) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "mean_ms": sum(values) / len(values) * 1000,
        "max_ms": values[-1] * 1000,
    }


def make_session(
    server: RunningServer,
    transport: str,
    rng: random.Random,
    on_progress: Callable[[dict[str, Any], float], None] | None = None,
) -> AnySession:
    """A session on a randomly chosen process (connection-level balancing, no stickiness)."""
    spec = server.spec
    if transport in (HTTP_JSON, HTTP_SSE):
        return StreamableSession(HOST, rng.choice(server.ports), spec.mcp_path, on_progress)
    if transport == STATELESS:
        return StatelessSession(HOST, rng.choice(server.ports), spec.mcp_path, on_progress)
    if transport == LEGACY:
        return LegacySession(HOST, rng.choice(server.ports), rng.choice(server.ports), spec.sse_path, on_progress)
    raise ValueError(f"unknown transport {transport!r}")


async def open_sessions(sessions: list[AnySession], batch: int = 16) -> None:
    for start in range(0, len(sessions), batch):
        await asyncio.wait_for(asyncio.gather(*(s.initialize() for s in sessions[start : start + batch])), 60)


async def close_sessions(sessions: list[AnySession]) -> None:
    for start in range(0, len(sessions), 32):
        await asyncio.gather(*(s.close() for s in sessions[start : start + 32]), return_exceptions=True)


# -- load ------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    server: str
    transport: str
    concurrency: int
    status: str = "ok"  # ok | n/a | error
    note: str = ""
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    calls_per_s: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)
    server_cpu_us_per_call: float | None = None
    server_cpu_pct: float | None = None
    redis_cpu_us_per_call: float | None = None
    client_cpu_pct: float | None = None
    # CPU used on the server's / client's core by processes other than ours (other sessions'
    # test suites, Redis): a run with much of it is noisy.
    foreign_server_core_pct: float | None = None
    foreign_client_core_pct: float | None = None
    sse_reply_fraction: float | None = None
    baseline: str | None = None
    vs_baseline: dict[str, float] = field(default_factory=dict)
    round: int = 1
    # With --rounds > 1: calls/s of every round (this row is the median one).
    rounds_calls_per_s: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def one_call(session: AnySession, transport: str, counter: int) -> None:
    if transport == HTTP_SSE:
        result = await session.call_tool("slow_echo", {"text": "hello", "seconds": 0}, progress_token=counter)
    else:
        result = await session.call_tool("echo", {"text": "hello"})
    if result.get("isError"):
        raise MCPCallError(f"tool error: {result.get('content')}")


async def probe(server: RunningServer, transport: str) -> str | None:
    """None if the server serves this transport; otherwise why not (reported as n/a)."""
    session = make_session(server, transport, random.Random(0))
    try:
        await asyncio.wait_for(session.initialize(), 15)
        await asyncio.wait_for(one_call(session, transport, 1), 15)
    except CALL_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"[:160]
    finally:
        await session.close()
    return None


async def run_load(
    server: RunningServer, transport: str, concurrency: int, warmup: float, duration: float, seed: int = 1
) -> LoadResult:
    result = LoadResult(server.spec.label, transport, concurrency, baseline=server.spec.baseline)
    if transport == STATELESS:
        why = await probe(server, transport)
        if why is not None:
            result.status, result.note = "n/a", why
            return result
    rng = random.Random(seed)
    sessions = [make_session(server, transport, rng) for _ in range(concurrency)]
    try:
        await open_sessions(sessions)
    except CALL_ERRORS as exc:
        await close_sessions(sessions)
        result.status, result.note = "error", f"session setup failed: {type(exc).__name__}: {exc}"[:200]
        return result

    pids = server.pids
    redis_url = server.spec.redis_url
    started = time.monotonic()
    measure_from = started + warmup
    measure_to = measure_from + duration
    latencies: list[float] = []
    errors = 0
    error_kinds: Counter[str] = Counter()
    marks: dict[str, Any] = {}

    def snapshot(name: str) -> None:
        marks[name] = (
            time.monotonic(),
            cpu_seconds(pids),
            time.process_time(),
            redis_cpu_seconds(redis_url) if redis_url else None,
            core_seconds(),
        )

    async def marker() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        snapshot("from")
        await asyncio.sleep(max(0.0, measure_to - time.monotonic()))
        snapshot("to")

    async def worker(session: AnySession) -> None:
        nonlocal errors
        counter = 0
        while True:
            t0 = time.monotonic()
            if t0 >= measure_to:
                return
            counter += 1
            try:
                await one_call(session, transport, counter)
            except CALL_ERRORS as exc:
                t1 = time.monotonic()
                if measure_from <= t1 <= measure_to:
                    errors += 1
                    error_kinds[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                if isinstance(session, LegacySession):
                    if not session.stream_open:
                        return
                else:
                    session.conn.close()  # unknown state: the next call reconnects
                if errors > 1000:
                    return
                continue
            t1 = time.monotonic()
            if measure_from <= t1 <= measure_to:
                latencies.append(t1 - t0)

    marker_task = asyncio.create_task(marker())
    tasks = [asyncio.create_task(worker(s)) for s in sessions]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), warmup + duration + 60)
    except TimeoutError:
        result.note = "some calls did not finish within 60 s after the run"
    finally:
        for task in tasks:
            task.cancel()
    if time.monotonic() < measure_to - 0.05:
        marker_task.cancel()  # every worker gave up early
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(marker_task, max(0.0, measure_to - time.monotonic()) + 2)
    await close_sessions(sessions)

    if "to" not in marks:
        snapshot("to")
    if "from" not in marks:
        result.status, result.note = "error", "the run ended before the measured window"
        return result
    (t_from, cpu_from, client_from, redis_from, cores_from) = marks["from"]
    (t_to, cpu_to, client_to, redis_to, cores_to) = marks["to"]
    window = t_to - t_from
    calls = len(latencies)
    result.calls, result.errors, result.seconds = calls, errors, round(window, 3)
    result.calls_per_s = calls / window if window > 0 else 0.0
    result.latency = latency_summary(latencies)
    result.server_cpu_pct = (cpu_to - cpu_from) / window * 100
    result.client_cpu_pct = (client_to - client_from) / window * 100
    result.foreign_server_core_pct = foreign_load(cores_from, cores_to, SERVER_CORE, result.server_cpu_pct)
    result.foreign_client_core_pct = foreign_load(cores_from, cores_to, CLIENT_CORE, result.client_cpu_pct)
    if calls:
        result.server_cpu_us_per_call = (cpu_to - cpu_from) / calls * 1e6
        if redis_from is not None and redis_to is not None:
            result.redis_cpu_us_per_call = (redis_to - redis_from) / calls * 1e6
    if transport in (HTTP_JSON, HTTP_SSE):
        total = sum(s.next_id for s in sessions if isinstance(s, StreamableSession))
        sse = sum(s.sse_replies for s in sessions if isinstance(s, StreamableSession))
        result.sse_reply_fraction = round(sse / total, 3) if total else None
    if errors:
        result.note = "; ".join(f"{n}x {kind}" for kind, n in error_kinds.most_common(2))
        if not calls:
            result.status = "error"
    return result


def foreign_load(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], core: int, ours_pct: float
) -> float | None:
    """Busy percent of ``core`` over the window minus what our process used (others' load)."""
    if core not in before or core not in after:
        return None
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    if total <= 0:
        return None
    return round(max(0.0, busy / total * 100 - ours_pct), 1)


def median_rounds(results: list[LoadResult]) -> list[LoadResult]:
    """One row per server, transport and concurrency: the round with the median calls/s (the
    lower middle one for an even count), carrying every round's calls/s."""
    groups: dict[tuple[str, str, int], list[LoadResult]] = {}
    for row in results:
        groups.setdefault((row.server, row.transport, row.concurrency), []).append(row)
    merged = []
    for rows in groups.values():
        ok = sorted((r for r in rows if r.status == "ok"), key=lambda r: r.calls_per_s)
        if not ok:
            merged.append(rows[0])
            continue
        chosen = ok[(len(ok) - 1) // 2]
        chosen.rounds_calls_per_s = [round(r.calls_per_s, 1) for r in sorted(rows, key=lambda r: r.round)]
        failed = len(rows) - len(ok)
        if failed:
            chosen.note = (chosen.note + "; " if chosen.note else "") + f"{failed} of {len(rows)} rounds failed"
        merged.append(chosen)
    return merged


def attach_ratios(results: list[LoadResult]) -> None:
    """Each row with a baseline gets its figures as multiples of the baseline's."""
    index = {(r.server, r.transport, r.concurrency): r for r in results if r.status == "ok"}
    for row in results:
        if row.status != "ok" or not row.baseline:
            continue
        base = index.get((row.baseline, row.transport, row.concurrency))
        if base is None or not base.calls_per_s:
            continue
        ratios = {"calls_per_s": row.calls_per_s / base.calls_per_s}
        if row.latency.get("p50_ms") and base.latency.get("p50_ms"):
            ratios["p50"] = row.latency["p50_ms"] / base.latency["p50_ms"]
        if row.server_cpu_us_per_call and base.server_cpu_us_per_call:
            ratios["cpu_per_call"] = row.server_cpu_us_per_call / base.server_cpu_us_per_call
        row.vs_baseline = {k: round(v, 3) for k, v in ratios.items()}


# -- idle stream capacity --------------------------------------------------------------------
async def legacy_latency_probe(server: RunningServer, calls: int) -> dict[str, Any]:
    """A new legacy session's sequential echo latency (initialize included in setup, not timed)."""
    session = make_session(server, LEGACY, random.Random(7))
    latencies: list[float] = []
    try:
        t0 = time.monotonic()
        await asyncio.wait_for(session.initialize(), 30)
        setup_ms = (time.monotonic() - t0) * 1000
        for index in range(calls):
            t0 = time.monotonic()
            await asyncio.wait_for(one_call(session, LEGACY, index), 30)
            latencies.append(time.monotonic() - t0)
    except CALL_ERRORS as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:200], "calls": len(latencies)}
    finally:
        await session.close()
    return {"session_setup_ms": round(setup_ms, 2), "calls": len(latencies), **latency_summary(latencies)}


async def run_idle_streams(server: RunningServer, streams: int, hold: float, probe_calls: int) -> dict[str, Any]:
    """Hold ``streams`` legacy SSE streams open for ``hold`` seconds; memory, CPU, survivors, and
    the latency of a new session meanwhile."""
    out: dict[str, Any] = {"server": server.spec.label, "streams": streams, "hold_s": hold}
    out["latency_before"] = await legacy_latency_probe(server, probe_calls)
    pids = server.pids
    rss_before = server.rss_bytes()
    rng = random.Random(3)
    sessions = [LegacySession(HOST, rng.choice(server.ports), None, server.spec.sse_path) for _ in range(streams)]
    opened = 0
    failures: Counter[str] = Counter()
    t0 = time.monotonic()
    for start in range(0, streams, 50):
        batch = sessions[start : start + 50]
        outcomes = await asyncio.gather(*(s.open(open_timeout=30) for s in batch), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                failures[f"{type(outcome).__name__}: {str(outcome)[:80]}"] += 1
            else:
                opened += 1
    out["open_seconds"] = round(time.monotonic() - t0, 3)
    out["opened"] = opened
    if failures:
        out["open_failures"] = dict(failures.most_common(3))
    hold_started = time.monotonic()
    cpu_start = cpu_seconds(pids)
    await asyncio.sleep(min(1.0, hold / 4))
    rss_held = server.rss_bytes()
    out["rss_before_mb"] = round(rss_before / 2**20, 1)
    out["rss_held_mb"] = round(rss_held / 2**20, 1)
    out["rss_per_stream_kb"] = round((rss_held - rss_before) / max(1, opened) / 1024, 1)
    out["latency_while_held"] = await legacy_latency_probe(server, probe_calls)
    await asyncio.sleep(max(0.0, hold - (time.monotonic() - hold_started)))
    held_for = time.monotonic() - hold_started
    out["idle_cpu_pct"] = round((cpu_seconds(pids) - cpu_start) / held_for * 100, 2)
    out["still_open"] = sum(1 for s in sessions if s.stream_open)
    out["keepalives_received"] = sum(s.keepalives for s in sessions)
    t0 = time.monotonic()
    await close_sessions(sessions)  # type: ignore[arg-type]
    out["close_seconds"] = round(time.monotonic() - t0, 3)
    await asyncio.sleep(0.5)
    out["server_alive"] = server.alive()
    return out


# -- progress delivery -----------------------------------------------------------------------
async def run_progress(
    server: RunningServer, transport: str, parallel: int, count: int, interval: float
) -> dict[str, Any]:
    """``parallel`` concurrent bench_progress calls; delay = receipt time - time in the message."""
    delays: list[float] = []
    bad = 0

    def sink(params: dict[str, Any], received: float) -> None:
        nonlocal bad
        try:
            delays.append(received - float(params.get("message", "")))
        except ValueError:
            bad += 1

    rng = random.Random(5)
    sessions = [make_session(server, transport, rng, on_progress=sink) for _ in range(parallel)]
    out: dict[str, Any] = {
        "server": server.spec.label,
        "transport": transport,
        "parallel": parallel,
        "count": count,
        "interval_ms": interval * 1000,
    }
    try:
        await open_sessions(sessions)
        t0 = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    s.call_tool("bench_progress", {"count": count, "interval": interval}, progress_token=f"t{i}")
                    for i, s in enumerate(sessions)
                )
            ),
            60 + count * interval * 4,
        )
        out["call_seconds"] = round(time.monotonic() - t0, 3)
    except CALL_ERRORS as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await close_sessions(sessions)
    out["expected"] = parallel * count
    out["received"] = len(delays)
    if bad:
        out["unparsable"] = bad
    out.update({k.replace("_ms", "_delay_ms"): round(v, 3) for k, v in latency_summary(delays).items()})
    return out


# -- profiling -------------------------------------------------------------------------------
# py-spy names frames "function (path:line)", the path relative to its sys.path entry: the first
# path segment tells the package.
COMPONENTS = {
    "mcp_sse": "mcp_sse (ours)",
    "demo_library": "demo tools",
    "channels_redis": "channels_redis",
    "channels": "channels",
    "daphne": "daphne",
    "twisted": "twisted",
    "uvicorn": "uvicorn",
    "h11": "h11",
    "asgiref": "asgiref (sync_to_async)",
    "django": "django",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "redis": "redis-py",
    "asyncio": "asyncio",
    "selectors.py": "asyncio",
    "concurrent": "threads (executor)",
    "threading.py": "threads (executor)",
    "queue.py": "threads (executor)",
    "json": "json",
    "logging": "logging",
    "email": "email (header parsing)",
    "sqlite3": "sqlite3",
}


def frame_path(frame: str) -> str:
    return frame[frame.rfind("(") + 1 :].rsplit(":", 1)[0]


def component_of(frame: str) -> str:
    path = frame_path(frame)
    head = path.split("/", 1)[0]
    if head in COMPONENTS:
        return COMPONENTS[head]
    if path.startswith("<frozen"):
        return "stdlib (other)"
    return "stdlib (other)" if "/" not in path or head.islower() else "other"


def function_of(frame: str) -> str:
    """The frame without its line number: ``function (path)``."""
    return frame.rsplit(":", 1)[0] + ")"


def parse_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if body and count.isdigit():
            stacks.append((body.split(";"), int(count)))
    return stacks


LOOP_OWNERS = (
    ("mcp_sse/", "mcp_sse (ours): transport, dispatch, session, call log record"),
    ("demo_library/", "tool body"),
    ("asgiref/sync.py", "sync_to_async, loop side (submit, await, contextvars copy)"),
    ("asgiref/local.py", "asgiref Local lookups (caches[...], connections[...])"),
    ("channels_redis/", "channel layer / Redis client (loop)"),
    ("redis/", "channel layer / Redis client (loop)"),
    ("channels/", "channels (URLRouter, consumer base)"),
    ("django/", "django on the loop (URL resolver, settings, cache handler)"),
    ("daphne/", "HTTP server: daphne/twisted"),
    ("twisted/", "HTTP server: daphne/twisted"),
    ("uvicorn/", "HTTP server: uvicorn/h11"),
    ("h11/", "HTTP server: uvicorn/h11"),
)


def bucket_of(code: list[str]) -> str:
    """Where a sample's CPU went. Worker-thread samples by what the thread does; event-loop
    samples by the innermost frame of a known package (stdlib work such as asyncio, json or
    email parsing counts for the package that called it)."""
    paths = [frame_path(f) for f in code]
    if any("Thread._bootstrap" in f for f in code):
        if any(p.startswith("mcp_sse/audit.py") for p in paths):
            return "worker thread: call log writes (executemany)"
        if any(p.startswith("django/core/cache") for p in paths):
            return "worker thread: cache get/set"
        if any(p.startswith("django/db") for p in paths):
            return "worker thread: ORM / database"
        return "worker thread: sync tools (the tool, its hand-off, Django connection hygiene)"
    for path in reversed(paths):
        for prefix, name in LOOP_OWNERS:
            if path.startswith(prefix):
                return name
    return "event loop (asyncio, no package frame)"


# Innermost frames of a pool thread blocked waiting for work: py-spy (--nonblocking) records
# these as samples, but they are not CPU (the thread sleeps in the queue's lock, or waits for
# the GIL right after waking). mcp_sse's tool threads wait in ``SimpleQueue.get()``, a C call,
# so their idle samples end in ``_work`` itself (everything else it does calls out).
WAITING_LEAVES = (
    "_worker (concurrent/futures/thread.py)",
    "wait (threading.py)",
    "get (queue.py)",
    "ToolThreads._work (mcp_sse/registry/threads.py)",
)


def is_waiting(code: list[str]) -> bool:
    return function_of(code[-1]) in WAITING_LEAVES


def summarize_profile(stacks: list[tuple[list[str], int]], top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares (percent of the CPU samples) by package and by function;
    samples of idle pool threads are counted apart and left out of the shares."""
    waiting = sum(n for frames, n in stacks if is_waiting([f for f in frames if "(" in f and ":" in f] or ["-"]))
    total = (sum(n for _, n in stacks) - waiting) or 1
    self_by_component: Counter[str] = Counter()
    self_by_function: Counter[str] = Counter()
    inclusive_ours: Counter[str] = Counter()
    inclusive_component: Counter[str] = Counter()
    worker_threads = 0
    buckets: Counter[str] = Counter()
    for frames, n in stacks:
        code = [f for f in frames if "(" in f and ":" in f]
        if not code or is_waiting(code):
            continue
        if any("Thread._bootstrap" in f for f in code):
            worker_threads += n
        buckets[bucket_of(code)] += n
        leaf = code[-1]
        self_by_component[component_of(leaf)] += n
        self_by_function[function_of(leaf)] += n
        components = {component_of(f) for f in code}
        for name in components:
            inclusive_component[name] += n
        for name in {function_of(f) for f in code if component_of(f) == "mcp_sse (ours)"}:
            inclusive_ours[name] += n

    def pct(counter: Counter[str], limit: int) -> list[tuple[str, float]]:
        return [(k, round(v / total * 100, 2)) for k, v in counter.most_common(limit)]

    return {
        "samples": total,
        "idle_pool_thread_samples": waiting,
        "worker_threads_pct": round(worker_threads / total * 100, 2),
        "buckets_pct": pct(buckets, 20),
        "self_by_component_pct": pct(self_by_component, 30),
        "inclusive_by_component_pct": pct(inclusive_component, 30),
        "self_by_function_pct": pct(self_by_function, top),
        "inclusive_ours_pct": pct(inclusive_ours, top + 10),
    }


def py_spy_path() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


async def run_profile(
    server: RunningServer, transport: str, concurrency: int, seconds: float, rate: int, out_dir: Path, stamp: str
) -> dict[str, Any]:
    """Load the server while py-spy samples it; collapsed stacks saved, and summarised."""
    spy = py_spy_path()
    if spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    raw_path = out_dir / f"profile-{stamp}-{server.spec.label}-{transport}.collapsed.txt"
    pid = server.processes[0].pid
    # Warm up first: one-time work (first ORM queries, caches filling) is not the hot path.
    await run_load(server, transport, concurrency, warmup=0.0, duration=2.0)
    process = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds)),
        "--format", "raw", "--output", str(raw_path), "--nonblocking",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # let py-spy attach
    load = await run_load(server, transport, concurrency, warmup=0.5, duration=max(1.0, seconds - 1.5))
    output, _ = await asyncio.wait_for(process.communicate(), seconds + 60)
    if process.returncode != 0 or not raw_path.exists():
        return {"error": f"py-spy failed ({process.returncode}): {output.decode(errors='replace')[-500:]}"}
    summary = summarize_profile(parse_collapsed(raw_path))
    summary.update(
        server=server.spec.label,
        transport=transport,
        concurrency=concurrency,
        rate_hz=rate,
        collapsed_stacks=str(raw_path),
        load_during_profile=load.as_dict(),
    )
    return summary


# -- paired comparison ----------------------------------------------------------------------
async def run_paired(
    servers: list[RunningServer], transport: str, concurrency: int, slices: int, seconds: float
) -> dict[str, Any]:
    """Two servers up at once, loaded in alternating short slices (the order flips every
    slice): the machine's drift, which on a shared VM moves throughput by ±25 % over minutes,
    reaches both alike, and the median of the per-slice ratios measures the difference."""
    first, second = servers
    rates: dict[str, list[float]] = {first.spec.label: [], second.spec.label: []}
    cpus: dict[str, list[float]] = {first.spec.label: [], second.spec.label: []}
    ratios: list[float] = []
    for index in range(slices):
        order = (first, second) if index % 2 == 0 else (second, first)
        got: dict[str, float] = {}
        for server in order:
            result = await run_load(server, transport, concurrency, warmup=0.3, duration=seconds)
            if result.status != "ok" or not result.calls_per_s:
                return {"error": f"{server.spec.label}: {result.status} {result.note}"}
            got[server.spec.label] = result.calls_per_s
            rates[server.spec.label].append(result.calls_per_s)
            if result.server_cpu_us_per_call:
                cpus[server.spec.label].append(result.server_cpu_us_per_call)
        ratios.append(got[second.spec.label] / got[first.spec.label])
    ratios.sort()
    return {
        "servers": [first.spec.label, second.spec.label],
        "transport": transport,
        "concurrency": concurrency,
        "slices": slices,
        "slice_seconds": seconds,
        "calls_per_s_median": {k: round(statistics.median(v), 1) for k, v in rates.items()},
        "cpu_us_per_call_median": {k: round(statistics.median(v), 1) for k, v in cpus.items() if v},
        "ratio_median": round(statistics.median(ratios), 4),
        "ratio_quartiles": [round(ratios[len(ratios) // 4], 4), round(ratios[(3 * len(ratios)) // 4], 4)],
        "ratios": [round(r, 4) for r in ratios],
    }
