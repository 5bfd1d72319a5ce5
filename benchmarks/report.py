"""Plain-text tables of a benchmark run."""

from __future__ import annotations

from typing import Any

from .scenarios import LoadResult


def _f(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.rjust(w) if i > 2 else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    return "\n".join(lines)


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}" if values else ""


def paired_line(d: dict[str, Any]) -> str:
    if "error" in d:
        return f"paired: {d['error']}"
    first, second = d["servers"]
    rates, cpus = d["calls_per_s_median"], d.get("cpu_us_per_call_median", {})
    low, high = d["ratio_quartiles"]
    return (
        f"paired {d['transport']} c={d['concurrency']}, {d['slices']} x {d['slice_seconds']:.0f} s slices:"
        f" {first} {_f(rates.get(first))} calls/s ({_f(cpus.get(first), 0)} us/call),"
        f" {second} {_f(rates.get(second))} calls/s ({_f(cpus.get(second), 0)} us/call);"
        f" {second}/{first} per slice: median {d['ratio_median']:.3f}x (quartiles {low:.3f}-{high:.3f})"
    )


def load_line(r: LoadResult) -> str:
    if r.status != "ok":
        return f"{r.transport:10} c={r.concurrency:<3} {r.status}: {r.note}"
    lat = r.latency
    return (
        f"{r.transport:10} c={r.concurrency:<3} {r.calls_per_s:8.1f} calls/s  p50 {_f(lat.get('p50_ms'), 2)} ms"
        f"  p99 {_f(lat.get('p99_ms'), 2)} ms  cpu {_f(r.server_cpu_us_per_call, 0)} us/call"
        f" ({_f(r.server_cpu_pct, 0)}% of a core)"
        f"  client {_f(r.client_cpu_pct, 0)}%  errors {r.errors}" + (f"  ({r.note})" if r.note else "")
    )


def idle_line(d: dict[str, Any]) -> str:
    held = d.get("latency_while_held", {})
    return (
        f"idle: {d.get('opened')}/{d['streams']} streams, {_f(d.get('rss_per_stream_kb'))} KiB each, "
        f"{d.get('still_open')} open after {d['hold_s']:.0f} s, idle CPU {_f(d.get('idle_cpu_pct'), 2)}%, "
        f"new session p50 {_f(held.get('p50_ms'), 2)} ms"
    )


def progress_line(d: dict[str, Any]) -> str:
    return (
        f"progress {d['transport']} x{d['parallel']}: {d.get('received')}/{d.get('expected')} received, "
        f"delay p50 {_f(d.get('p50_delay_ms'), 2)} p99 {_f(d.get('p99_delay_ms'), 2)} ms"
        + (f" ({d['error']})" if d.get("error") else "")
    )


def render(output: dict[str, Any]) -> str:
    meta = output["meta"]
    parts = [
        f"mcp_sse benchmarks  {meta.get('started')}  commit {meta.get('commit')}  Python {meta.get('python')}",
        f"{meta.get('cpu')} ({meta.get('cores')} cores, {meta.get('pinned')},"
        f" nice {meta.get('args', {}).get('nice', 0)},"
        f" load average at start {meta.get('load_average')}); uvicorn {meta.get('uvicorn_loop_http')}",
        "packages: " + ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items()),
    ]
    loads = [LoadResult(**{k: v for k, v in row.items()}) for row in output.get("load", [])]
    if loads:
        rounds = max((len(r.rounds_calls_per_s) for r in loads), default=1)
        rows = []
        for r in loads:
            if r.status != "ok":
                rows.append([r.server, r.transport, str(r.concurrency), r.status] + [""] * (11 + (rounds > 1)))
                continue
            lat = r.latency
            vs = r.vs_baseline
            rows.append(
                [
                    r.server,
                    r.transport,
                    str(r.concurrency),
                    _f(r.calls_per_s),
                    _f(lat.get("p50_ms"), 2),
                    _f(lat.get("p95_ms"), 2),
                    _f(lat.get("p99_ms"), 2),
                    _f(r.server_cpu_us_per_call, 0),
                    _f(r.server_cpu_pct, 0),
                    _f(r.redis_cpu_us_per_call, 0),
                    _f(r.client_cpu_pct, 0),
                    f"{_f(r.foreign_server_core_pct, 0)}/{_f(r.foreign_client_core_pct, 0)}",
                    str(r.errors),
                    f"{vs['calls_per_s']:.2f}x" if "calls_per_s" in vs else "",
                    f"{vs['cpu_per_call']:.2f}x" if "cpu_per_call" in vs else "",
                ]
                + ([spread(r.rounds_calls_per_s)] if rounds > 1 else [])
            )
        headers = [
            "server", "transport", "c", "calls/s", "p50 ms", "p95 ms", "p99 ms", "srv us/call", "srv CPU %",
            "redis us/call", "client %", "others %", "errors", "thr vs ours", "cpu vs ours",
        ]  # fmt: skip
        if rounds > 1:
            headers.append("calls/s min-max")
        parts += [
            "",
            "Load (tools/call, closed loop; 'vs ours' = this row / ours on the same runner;"
            " 'others %' = CPU used by other processes on the server/client core)"
            + (f"; each row is the median of {rounds} rounds (by calls/s)" if rounds > 1 else ""),
            _table(headers, rows),
        ]
        notes = [f"  {r.server} {r.transport} c={r.concurrency}: {r.note}" for r in loads if r.note]
        sse = [
            f"  {r.server} c={r.concurrency}: {r.sse_reply_fraction:.0%} SSE replies"
            for r in loads
            if r.transport == "http-sse" and r.sse_reply_fraction is not None and r.sse_reply_fraction < 0.999
        ]
        if notes or sse:
            parts += ["notes:", *notes, *sse]
    if output.get("idle"):
        rows = []
        for d in output["idle"]:
            before, held = d.get("latency_before", {}), d.get("latency_while_held", {})
            rows.append(
                [
                    d["server"],
                    f"{d.get('opened')}/{d['streams']}",
                    _f(d.get("open_seconds"), 2),
                    _f(d.get("rss_before_mb")),
                    _f(d.get("rss_held_mb")),
                    _f(d.get("rss_per_stream_kb")),
                    _f(d.get("idle_cpu_pct"), 2),
                    f"{d.get('still_open')}",
                    str(d.get("keepalives_received")),
                    _f(before.get("p50_ms"), 2),
                    _f(held.get("p50_ms"), 2),
                    _f(held.get("p99_ms"), 2),
                    _f(held.get("session_setup_ms"), 1),
                ]
            )
        headers = [
            "server", "opened", "open s", "RSS MiB", "held MiB", "KiB/stream", "idle CPU %",
            "open after hold", "keep-alives", "p50 before", "p50 held", "p99 held", "new session ms",
        ]  # fmt: skip
        hold = output["idle"][0]["hold_s"]
        parts += ["", f"Idle legacy SSE streams (held {hold:.0f} s; latencies in ms, a new legacy session)"]
        parts.append(_table(headers, rows))
    if output.get("progress"):
        rows = [
            [
                d["server"],
                d["transport"],
                str(d["parallel"]),
                f"{d.get('received')}/{d.get('expected')}",
                _f(d.get("p50_delay_ms"), 2),
                _f(d.get("p95_delay_ms"), 2),
                _f(d.get("p99_delay_ms"), 2),
                _f(d.get("max_delay_ms"), 2),
                d.get("error", ""),
            ]
            for d in output["progress"]
        ]
        headers = ["server", "transport", "parallel", "received", "p50 ms", "p95 ms", "p99 ms", "max ms", "error"]
        parts += ["", "Progress delivery (emission -> receipt delay of notifications/progress)", _table(headers, rows)]
    for profile in output.get("profile") or []:
        parts += ["", f"Profile of {profile.get('server')}"]
        if "error" in profile:
            parts.append(f"  error: {profile['error']}")
            continue
        load = profile.get("load_during_profile", {})
        parts.append(
            f"  {profile['transport']} c={profile['concurrency']}: {profile['samples']} CPU samples at"
            f" {profile['rate_hz']} Hz ({profile['worker_threads_pct']}% in worker threads;"
            f" {profile.get('idle_pool_thread_samples', 0)} samples of idle pool threads left out),"
            f" {_f(load.get('calls_per_s'))} calls/s under py-spy"
        )
        for title, key in (
            ("where the CPU goes (each sample counted once)", "buckets_pct"),
            ("self time by package", "self_by_component_pct"),
            ("inclusive (on the stack) by package", "inclusive_by_component_pct"),
            ("top self functions", "self_by_function_pct"),
            ("top inclusive mcp_sse functions", "inclusive_ours_pct"),
        ):
            parts.append(f"  {title}:")
            parts += [f"    {pct:6.2f}%  {name}" for name, pct in profile[key]]
        parts.append(f"  collapsed stacks: {profile['collapsed_stacks']}")
    if output.get("paired"):
        parts += ["", "Paired comparison (alternating slices, same minutes)"]
        parts += ["  " + paired_line(d) for d in output["paired"]]
    if output.get("skipped"):
        parts += ["", "Skipped:"] + [f"  {k}: {str(v)[:300]}" for k, v in output["skipped"].items()]
    return "\n".join(parts)
