"""What OpenTelemetry costs per call: the demo without the API importable, with the API and no
SDK (the shipped default), and with the SDK and a batch exporter (MCP spans only, and MCP spans
plus the ASGI instrumentation's HTTP spans), measured side by side.

    .venv/bin/python -m benchmarks.otel                 # about 55 s
    .venv/bin/python -m benchmarks.otel --slices 8 --seconds 2 --concurrency 16

The three servers are up at once and loaded in turn in short slices (the order rotates every
slice), so the machine's drift reaches all three alike; the table shows each one's median
calls/s and server CPU per call, and the median of the per-slice ratios to ``absent``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .scenarios import HTTP_JSON, run_load
from .servers import ServerSpec, migrate_database, pin_self_to_client_core, start

APP = "benchmarks.otel_asgi:application"
MODES = ("absent", "api", "sdk-mcp", "sdk")
# sdk-mcp: the SDK as in sdk, the ASGI middleware's HTTP spans turned off for the MCP paths
# (its own variable), so only our MCP spans and metrics are made.
EXTRA_ENV = {"sdk-mcp": {"BENCH_OTEL": "sdk", "OTEL_PYTHON_ASGI_EXCLUDED_URLS": "mcp"}}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    pinned = not args.no_pin and pin_self_to_client_core()
    work = Path(tempfile.mkdtemp(prefix="mcp-bench-otel-"))
    base_env = migrate_database(work / "bench.sqlite3") | {"DJANGO_DEBUG": "0"}
    specs = [
        ServerSpec(mode, "ours", "daphne", APP, EXTRA_ENV.get(mode, {"BENCH_OTEL": mode})) for mode in MODES
    ]
    servers = []
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
    ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for spec in specs:
            servers.append(start(spec, base_env, work, pin=pinned))
        for index in range(args.slices):
            turn = index % len(servers)
            order = servers[turn:] + servers[:turn]
            got: dict[str, float] = {}
            for server in order:
                mode = server.spec.label
                result = await run_load(server, args.transport, args.concurrency, warmup=0.3, duration=args.seconds)
                if result.status != "ok" or not result.calls_per_s or result.errors:
                    raise SystemExit(f"{mode}: {result.status} {result.note} errors={result.errors}")
                got[mode] = result.calls_per_s
                rates[mode].append(result.calls_per_s)
                if result.server_cpu_us_per_call:
                    cpus[mode].append(result.server_cpu_us_per_call)
            for mode in MODES:
                ratios[mode].append(got[mode] / got["absent"])
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "transport": args.transport,
        "concurrency": args.concurrency,
        "slices": args.slices,
        "slice_seconds": args.seconds,
        "pinned": pinned,
        "calls_per_s_median": {m: round(statistics.median(v), 1) for m, v in rates.items()},
        "cpu_us_per_call_median": {m: round(statistics.median(v), 1) for m, v in cpus.items() if v},
        "throughput_ratio_to_absent_median": {m: round(statistics.median(v), 4) for m, v in ratios.items()},
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"OpenTelemetry cost, {result['transport']} c={result['concurrency']}, "
        f"{result['slices']} rotating slices of {result['slice_seconds']} s (pinned: {result['pinned']})",
        f"{'set-up':10} {'calls/s':>9} {'CPU µs/call':>12} {'thr vs absent':>14}",
    ]
    for mode in MODES:
        cpu = result["cpu_us_per_call_median"].get(mode)
        lines.append(
            f"{mode:10} {result['calls_per_s_median'][mode]:>9.1f} {cpu if cpu is not None else float('nan'):>12.1f} "
            f"{result['throughput_ratio_to_absent_median'][mode]:>14.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel", description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=5, help="rotating load slices (5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per slice and server (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent sessions (16)")
    parser.add_argument("--transport", default=HTTP_JSON, help="load transport (http-json)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to cores")
    args = parser.parse_args(argv)
    print(render(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
