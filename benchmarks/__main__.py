"""``python -m benchmarks``: start each server, run the chosen scenarios, print tables, write JSON.

See benchmarks/README.md. ``--help`` lists the options; ``--list`` the servers and scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .scenarios import (
    HTTP_JSON,
    HTTP_SSE,
    LEGACY,
    STATELESS,
    TRANSPORTS,
    LoadResult,
    attach_ratios,
    median_rounds,
    py_spy_path,
    run_idle_streams,
    run_load,
    run_paired,
    run_profile,
    run_progress,
)
from .servers import (
    ROOT,
    ServerSpec,
    can_pin,
    migrate_database,
    pin_self_to_client_core,
    postgres_available,
    postgres_database,
    redis_available,
    start,
)

RESULTS = Path(__file__).resolve().parent / "results"
OURS_APP = "demo_project.asgi:application"
FASTMCP_APP = "benchmarks.fastmcp_server:app"
# The official MCP Python SDK's own server (the mcp package is in our dev extra).
SDK_APP = "benchmarks.sdk_server:app"
STUB_APP = "benchmarks.stub_server:application"
GC_FROZEN_APP = "benchmarks.gc_frozen_asgi:application"
# Benchmark-only dependencies (also the pyproject "bench" extra); never needed by `make test`.
BENCH_REQUIREMENTS = ["fastmcp>=2.12", "py-spy>=0.4"]

SCENARIOS = ("load", "idle", "progress", "profile", "paired")
DEFAULT_SCENARIOS = ("load", "idle", "progress")


def catalog(redis_url: str, anchor: Path | None = None) -> dict[str, tuple[ServerSpec, tuple[str, ...]]]:
    """Every server configuration and the load transports it is measured on; with ``anchor``
    (a checkout of older code), an ``anchor-`` twin of each of our servers runs that code."""
    all_ours = (HTTP_JSON, HTTP_SSE, STATELESS, LEGACY)
    specs: list[tuple[ServerSpec, tuple[str, ...]]] = [
        (ServerSpec("ours-daphne", "ours", "daphne", OURS_APP), all_ours),
        (ServerSpec("ours-uvicorn", "ours", "uvicorn", OURS_APP), all_ours),
        (ServerSpec("ours-mcp-daphne", "ours", "mcp-daphne", OURS_APP, baseline="ours-daphne"), all_ours),
        (
            ServerSpec("ours-daphne-nolog", "ours", "daphne", OURS_APP, {"MCP_CALL_LOG": "0"}, baseline="ours-daphne"),
            (HTTP_JSON,),
        ),
        (ServerSpec("ours-daphne-pg", "ours", "daphne", OURS_APP, postgres=True, baseline="ours-daphne"), (HTTP_JSON,)),
        (
            ServerSpec(
                "ours-daphne-pg-nolog",
                "ours",
                "daphne",
                OURS_APP,
                {"MCP_CALL_LOG": "0"},
                postgres=True,
                baseline="ours-daphne",
            ),
            (HTTP_JSON,),
        ),
        (
            ServerSpec("ours-daphne-gcfreeze", "ours", "daphne", GC_FROZEN_APP, baseline="ours-daphne"),
            (HTTP_JSON,),
        ),
        (
            ServerSpec("ours-daphne-redis1", "ours", "daphne", OURS_APP, redis_url=redis_url, baseline="ours-daphne"),
            (HTTP_JSON, HTTP_SSE, LEGACY),
        ),
        (
            ServerSpec(
                "ours-daphne-redis2",
                "ours",
                "daphne",
                OURS_APP,
                processes=2,
                redis_url=redis_url,
                baseline="ours-daphne",
            ),
            (HTTP_JSON, LEGACY),
        ),
        (
            ServerSpec(
                "fastmcp-json",
                "fastmcp",
                "uvicorn",
                FASTMCP_APP,
                {"BENCH_FASTMCP_MODE": "json"},
                baseline="ours-uvicorn",
            ),
            (HTTP_JSON,),
        ),
        (
            ServerSpec(
                "fastmcp-sse", "fastmcp", "uvicorn", FASTMCP_APP, {"BENCH_FASTMCP_MODE": "sse"}, baseline="ours-uvicorn"
            ),
            (HTTP_SSE,),
        ),
        (
            ServerSpec(
                "fastmcp-legacy",
                "fastmcp",
                "uvicorn",
                FASTMCP_APP,
                {"BENCH_FASTMCP_MODE": "legacy"},
                baseline="ours-uvicorn",
            ),
            (LEGACY,),
        ),
        (
            ServerSpec("sdk-json", "sdk", "uvicorn", SDK_APP, {"BENCH_SDK_MODE": "json"}, baseline="ours-uvicorn"),
            (HTTP_JSON,),
        ),
        (
            ServerSpec("sdk-legacy", "sdk", "uvicorn", SDK_APP, {"BENCH_SDK_MODE": "legacy"}, baseline="ours-uvicorn"),
            (LEGACY,),
        ),
        (ServerSpec("stub-daphne", "stub", "daphne", STUB_APP, baseline="ours-daphne"), (HTTP_JSON,)),
        (ServerSpec("stub-uvicorn", "stub", "uvicorn", STUB_APP, baseline="ours-uvicorn"), (HTTP_JSON,)),
        (ServerSpec("stub-mcp-daphne", "stub", "mcp-daphne", STUB_APP, baseline="ours-mcp-daphne"), (HTTP_JSON,)),
    ]
    if anchor is not None:
        specs += [
            (dataclasses.replace(spec, label=f"anchor-{spec.label}", root=anchor, baseline=spec.label), transports)
            for spec, transports in specs
            if spec.kind == "ours"
        ]
    return {spec.label: (spec, transports) for spec, transports in specs}


IDLE_SERVERS = ("ours-daphne", "ours-uvicorn", "ours-daphne-redis1", "fastmcp-legacy")
PROGRESS_RUNS = (
    ("ours-daphne", HTTP_SSE),
    ("ours-daphne", LEGACY),
    ("ours-uvicorn", HTTP_SSE),
    ("ours-uvicorn", LEGACY),
    ("fastmcp-sse", HTTP_SSE),
    ("fastmcp-legacy", LEGACY),
)


def csv(kind: Any) -> Any:
    def parse(text: str) -> list[Any]:
        return [kind(part) for part in text.split(",") if part.strip()]

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--scenarios",
        type=csv(str),
        default=list(DEFAULT_SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} or 'all' (default: {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument("--servers", type=csv(str), default=None, help="server labels to run (default: all; --list)")
    parser.add_argument(
        "--transports", type=csv(str), default=list(TRANSPORTS), help=f"load transports ({', '.join(TRANSPORTS)})"
    )
    parser.add_argument("--concurrency", type=csv(int), default=[1, 16, 64], help="load concurrency levels (1,16,64)")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per load run (4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each load run (1)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="load rounds (1); with more, every server is restarted each round, rounds interleave the"
        " servers, and the tables show the median round (by calls/s) with the spread",
    )
    parser.add_argument("--idle-streams", type=int, default=1000, help="legacy SSE streams held open (1000)")
    parser.add_argument("--idle-hold", type=float, default=20.0, help="seconds the streams are held (20)")
    parser.add_argument("--probe-calls", type=int, default=50, help="calls of the new session while held (50)")
    parser.add_argument("--progress-parallel", type=csv(int), default=[1, 16], help="parallel progress calls (1,16)")
    parser.add_argument("--progress-count", type=int, default=50, help="progress notifications per call (50)")
    parser.add_argument("--progress-interval", type=float, default=0.02, help="seconds between them (0.02)")
    parser.add_argument(
        "--profile-servers", type=csv(str), default=["ours-daphne"], help="servers profiled (ours-daphne)"
    )
    parser.add_argument("--profile-transport", default=HTTP_JSON, help="transport profiled (http-json)")
    parser.add_argument("--profile-concurrency", type=int, default=16, help="load while profiling (16)")
    parser.add_argument("--profile-seconds", type=float, default=15.0, help="profiling seconds (15)")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second (250)")
    parser.add_argument(
        "--paired",
        type=csv(str),
        default=["ours-daphne", "ours-daphne-nolog"],
        help="the two servers of the paired scenario (ours-daphne,ours-daphne-nolog)",
    )
    parser.add_argument("--paired-slices", type=int, default=20, help="alternating load slices (20)")
    parser.add_argument("--paired-seconds", type=float, default=2.0, help="seconds per slice (2)")
    parser.add_argument("--paired-concurrency", type=int, default=16, help="concurrency of the slices (16)")
    parser.add_argument("--paired-transport", default=HTTP_JSON, help="transport of the slices (http-json)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server for the *-pg servers (a database is created and dropped per run)",
    )
    parser.add_argument(
        "--anchor",
        type=Path,
        default=None,
        help="a checkout of older code (git worktree add DIR COMMIT): adds an anchor-<label> twin of each of"
        " our servers, run from DIR, to compare side by side"
        " (--scenarios paired --paired anchor-ours-uvicorn,ours-uvicorn)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-install", action="store_true", help="do not pip-install fastmcp/py-spy when missing")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server to core 0 and client to core 1")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice value for client and servers (negative needs root; lessens other processes' noise)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s runs, 100 streams, concurrency 1,16")
    parser.add_argument("--list", action="store_true", help="list servers and scenarios, then exit")
    args = parser.parse_args(argv)
    if "all" in args.scenarios:
        args.scenarios = list(SCENARIOS)
    if args.quick:
        args.duration, args.warmup, args.idle_streams, args.idle_hold = 1.0, 0.3, 100, 3.0
        args.concurrency, args.probe_calls, args.progress_count = [1, 16], 10, 10
        args.profile_seconds = 5.0
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    unknown = set(args.transports) - set(TRANSPORTS)
    if unknown:
        parser.error(f"unknown transports: {', '.join(sorted(unknown))}")
    return args


def ensure_bench_dependencies(install: bool) -> list[str]:
    """Install the benchmark-only packages into this interpreter's environment when missing."""
    missing = []
    if importlib.util.find_spec("fastmcp") is None:
        missing.append(BENCH_REQUIREMENTS[0])
    if py_spy_path() is None:
        missing.append(BENCH_REQUIREMENTS[1])
    if missing and install:
        print(f"installing benchmark-only packages: {' '.join(missing)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=False)
        if done.returncode != 0:
            print("warning: pip install failed; the FastMCP comparison / profile will be reported n/a", flush=True)
        importlib.invalidate_caches()
        missing = [
            m
            for m in missing
            if (m.startswith("fastmcp") and importlib.util.find_spec("fastmcp") is None)
            or (m.startswith("py-spy") and py_spy_path() is None)
        ]
    return missing


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("django", "channels", "channels-redis", "daphne", "twisted", "uvicorn", "fastmcp", "mcp", "uvloop"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def machine_info(pinned: bool) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "pinned": "server core 0, client core 1" if pinned else "not pinned",
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3])
        if Path("/proc/loadavg").exists()
        else "",
        "commit": commit or os.environ.get("BENCH_COMMIT", ""),
        "packages": package_versions(),
        "uvicorn_loop_http": (
            ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
            + "/"
            + ("httptools" if importlib.util.find_spec("httptools") else "h11")
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as cleanup:
        return await run_all(args, cleanup)


async def run_all(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> dict[str, Any]:
    servers = catalog(args.redis_url, args.anchor)
    wanted = args.servers or list(servers)
    unknown = set(wanted) - set(servers)
    if unknown:
        raise SystemExit(f"unknown servers: {', '.join(sorted(unknown))} (see --list)")
    missing = ensure_bench_dependencies(not args.no_install)
    pinned = not args.no_pin and pin_self_to_client_core()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    output: dict[str, Any] = {
        "meta": machine_info(pinned) | {"args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
        "load": [],
        "idle": [],
        "progress": [],
        "profile": [],
        "skipped": {},
    }
    redis_ok = redis_available(args.redis_url)
    work = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    print(f"migrating a SQLite database in {work} ...", flush=True)
    base_env = migrate_database(work / "bench.sqlite3")
    # Production shape: DEBUG off (no SQL query recording, no debug cursor wrappers).
    base_env["DJANGO_DEBUG"] = "0"
    chosen = set(wanted) | (set(args.paired) if "paired" in args.scenarios else set())
    on_postgres = sorted(label for label in chosen if label in servers and servers[label][0].postgres)
    if on_postgres:
        if postgres_available(args.postgres_url):
            print(f"creating and migrating a PostgreSQL database at {args.postgres_url} ...", flush=True)
            base_env["BENCH_POSTGRES_DATABASE_URL"] = cleanup.enter_context(postgres_database(args.postgres_url))
        else:
            for label in on_postgres:
                output["skipped"][label] = f"no PostgreSQL at {args.postgres_url}"
    load_results: list[LoadResult] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)

    # Round 1 runs every scenario; later rounds only the load runs, servers in the same order,
    # so slow drift of the machine reaches every server alike.
    plan = [(round_no, label) for round_no in range(1, max(1, args.rounds) + 1) for label in wanted]
    for round_no, label in plan:
        spec, transports = servers[label]
        first_round = round_no == 1
        needs_load = "load" in args.scenarios and [t for t in transports if t in args.transports]
        needs_idle = first_round and "idle" in args.scenarios and label in IDLE_SERVERS
        progress_runs = (
            [t for name, t in PROGRESS_RUNS if name == label] if first_round and "progress" in args.scenarios else []
        )
        needs_profile = first_round and "profile" in args.scenarios and label in args.profile_servers
        if not (needs_load or needs_idle or progress_runs or needs_profile):
            continue
        if label in output["skipped"]:
            continue
        if spec.kind == "fastmcp" and any("fastmcp" in m for m in missing):
            output["skipped"][label] = "fastmcp is not installed"
            continue
        if spec.redis_url and not redis_ok:
            output["skipped"][label] = f"no Redis at {spec.redis_url}"
            print(f"skipping {label}: no Redis at {spec.redis_url}", flush=True)
            continue
        rounds_text = f" (round {round_no}/{args.rounds})" if args.rounds > 1 else ""
        print(f"== {label}: starting {spec.processes} x {spec.runner} ({spec.app}){rounds_text}", flush=True)
        try:
            server = start(spec, base_env, work, pin=pinned, nice=args.nice)
        except RuntimeError as exc:
            output["skipped"][label] = str(exc)[:2000]
            print(f"   could not start: {str(exc)[:500]}", flush=True)
            continue
        try:
            if needs_load:
                for transport in [t for t in transports if t in args.transports]:
                    for concurrency in args.concurrency:
                        result = await run_load(server, transport, concurrency, args.warmup, args.duration)
                        result.round = round_no
                        load_results.append(result)
                        print("   " + report.load_line(result), flush=True)
                        if result.status == "n/a":
                            break
            if needs_idle:
                idle = await run_idle_streams(server, args.idle_streams, args.idle_hold, args.probe_calls)
                output["idle"].append(idle)
                print("   " + report.idle_line(idle), flush=True)
            for transport in progress_runs:
                for parallel in args.progress_parallel:
                    progress = await run_progress(
                        server, transport, parallel, args.progress_count, args.progress_interval
                    )
                    output["progress"].append(progress)
                    print("   " + report.progress_line(progress), flush=True)
            if needs_profile:
                if any("py-spy" in m for m in missing):
                    output["profile"].append({"server": label, "error": "py-spy is not installed"})
                else:
                    print(f"   profiling {args.profile_transport} for {args.profile_seconds:.0f} s ...", flush=True)
                    profiled = await run_profile(
                        server,
                        args.profile_transport,
                        args.profile_concurrency,
                        args.profile_seconds,
                        args.profile_rate,
                        RESULTS,
                        stamp,
                    )
                    output["profile"].append(profiled)
            if not server.alive():
                output["skipped"][label + " (died)"] = server.log_tail()
        finally:
            server.stop()

    if args.rounds > 1:
        output["load_rounds"] = [r.as_dict() for r in load_results]
        load_results = median_rounds(load_results)
    if "paired" in args.scenarios:
        output["paired"] = [await paired_run(args, servers, base_env, work, pinned)]
    attach_ratios(load_results)
    output["load"] = [r.as_dict() for r in load_results]
    output["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    text = report.render(output)
    print()
    print(text)
    json_path = RESULTS / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(output, indent=2, default=str))
    (RESULTS / f"bench-{stamp}.txt").write_text(text)
    print(f"\nwritten: {json_path} (and .txt)")
    if output["skipped"]:
        print(f"server logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return output


async def paired_run(
    args: argparse.Namespace, servers: dict[str, Any], base_env: dict[str, str], work: Path, pinned: bool
) -> dict[str, Any]:
    if len(args.paired) != 2 or set(args.paired) - set(servers):
        return {"error": f"--paired needs two known server labels, got {args.paired}"}
    if any(servers[label][0].postgres for label in args.paired) and "BENCH_POSTGRES_DATABASE_URL" not in base_env:
        return {"error": f"no PostgreSQL at {args.postgres_url}"}
    print(f"== paired: {args.paired[0]} vs {args.paired[1]}, {args.paired_slices} slices", flush=True)
    running = []
    try:
        for label in args.paired:
            running.append(start(servers[label][0], base_env, work, pin=pinned, nice=args.nice))
        result = await run_paired(
            running, args.paired_transport, args.paired_concurrency, args.paired_slices, args.paired_seconds
        )
    finally:
        for server in running:
            server.stop()
    print("   " + report.paired_line(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list:
        for label, (spec, transports) in catalog(args.redis_url, args.anchor).items():
            extra = f", {spec.processes} processes" if spec.processes > 1 else ""
            extra += ", Redis" if spec.redis_url else ""
            print(f"{label:20} {spec.runner:8} {spec.app}{extra}; load: {', '.join(transports)}")
        print(f"scenarios: {', '.join(SCENARIOS)} (default: {', '.join(DEFAULT_SCENARIOS)})")
        return
    if not can_pin() and not args.no_pin:
        print("note: fewer than 2 cores (or no sched_setaffinity): server and client are not pinned", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
