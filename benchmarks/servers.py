"""Server processes under test: start them pinned to a core, read their CPU time and memory.

Servers: our demo site (``demo_project.asgi:application``), a FastMCP server
(``benchmarks.fastmcp_server:app``) and a bare Channels stub (``benchmarks.stub_server:application``),
each under Daphne or uvicorn. CPU time and RSS come from ``/proc`` for the server processes
and all their descendants.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
HOST = "127.0.0.1"

SERVER_CORE = 0
CLIENT_CORE = 1


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_self_to_client_core() -> bool:
    if not can_pin():
        return False
    os.sched_setaffinity(0, {CLIENT_CORE})
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"server did not listen on port {port} within {timeout}s")


# -- /proc readings --------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pids: list[int]) -> list[int]:
    """The given pids and every live process below them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            # After the name: state(0) ppid(1) ... utime(11) stime(12).
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * PAGE_SIZE
    return total


def core_seconds() -> dict[int, tuple[float, float]]:
    """Per core: (busy, total) seconds since boot, from /proc/stat (busy excludes idle and iowait)."""
    cores: dict[int, tuple[float, float]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return cores
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            total = sum(ticks)
            cores[int(name[3:])] = ((total - ticks[3] - ticks[4]) / CLOCK_TICKS, total / CLOCK_TICKS)
    return cores


def redis_cpu_seconds(url: str) -> float | None:
    """used_cpu_user + used_cpu_sys of the Redis server (None if unreachable)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"INFO cpu\r\n")
            data = b""
            while b"used_cpu_user:" not in data or not data.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in data.decode(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name in ("used_cpu_user", "used_cpu_sys"):
            values[name] = float(value)
    return sum(values.values()) if values else None


def redis_available(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# -- servers ---------------------------------------------------------------------------------
@dataclass
class ServerSpec:
    """What to start. ``app`` is the ASGI path; ``kind`` is ours, fastmcp or stub."""

    label: str
    kind: str
    runner: str  # daphne | mcp-daphne (python -m mcp_sse.daphne_server) | uvicorn
    app: str
    env: dict[str, str] = field(default_factory=dict)
    processes: int = 1
    mcp_path: str = "/mcp"
    sse_path: str = "/mcp/sse"
    redis_url: str | None = None
    baseline: str | None = None  # label of "ours" to compare with
    postgres: bool = False  # the demo on the run's PostgreSQL database instead of SQLite
    root: Path | None = None  # where the app's code is (default: this checkout); see --anchor


@dataclass
class RunningServer:
    spec: ServerSpec
    ports: list[int]
    processes: list[subprocess.Popen[bytes]]
    log_paths: list[Path]

    @property
    def pids(self) -> list[int]:
        return descendants([p.pid for p in self.processes])

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pids)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def log_tail(self, chars: int = 3000) -> str:
        text = ""
        for path in self.log_paths:
            if path.exists():
                text += f"--- {path.name}\n" + path.read_text(errors="replace")[-chars:]
        return text

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class _ServerPreexec:
    """Runs in the forked child before exec: pin to the server core, set the nice value."""

    def __init__(self, pin: bool, nice: int) -> None:
        self.pin = pin
        self.nice = nice

    def __call__(self) -> None:
        if self.pin:
            os.sched_setaffinity(0, {SERVER_CORE})
        if self.nice:
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)


def server_command(runner: str, app: str, port: int) -> list[str]:
    if runner in ("daphne", "mcp-daphne"):
        module = "daphne" if runner == "daphne" else "mcp_sse.daphne_server"
        return [
            sys.executable, "-m", module, "-v", "0", "--application-close-timeout", "60",
            "-b", HOST, "-p", str(port), app,
        ]  # fmt: skip
    if runner == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--no-access-log", "--log-level", "warning",
            "--host", HOST, "--port", str(port), "--timeout-keep-alive", "60", app,
        ]  # fmt: skip
    raise ValueError(f"unknown runner {runner!r}")


def start(spec: ServerSpec, base_env: dict[str, str], log_dir: Path, pin: bool, nice: int = 0) -> RunningServer:
    env = {**os.environ, **base_env, **spec.env}
    env.pop("REDIS_URL", None)
    if spec.postgres:
        env["DATABASE_URL"] = base_env["BENCH_POSTGRES_DATABASE_URL"]
    if spec.redis_url:
        prefix = f"bench{os.getpid()}{int(time.time() * 1000) % 10**8}"
        env.update(REDIS_URL=spec.redis_url, MCP_LAYER_PREFIX=f"asgi-{prefix}", MCP_CACHE_PREFIX=f"mcp-{prefix}")
    ports: list[int] = []
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for _ in range(spec.processes):
            port = free_port()
            log_path = log_dir / f"{spec.label}-{port}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    server_command(spec.runner, spec.app, port),
                    cwd=spec.root or ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_ServerPreexec(pin, nice) if pin or nice else None,
                )
            ports.append(port)
            processes.append(process)
            logs.append(log_path)
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process)
    except Exception:
        for process in processes:
            process.kill()
        tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
        raise RuntimeError(f"{spec.label} did not start:\n{tails}") from None
    return RunningServer(spec, ports, processes, logs)


def migrate_database(db_path: Path | str) -> dict[str, str]:
    """A migrated database for the demo site (a SQLite file, or a ``postgres://`` URL);
    returns the env the servers need."""
    url = db_path if isinstance(db_path, str) else f"sqlite:///{db_path}"
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "MCP_REQUIRE_AUTH": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
    return env


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Any:
    """A fresh, migrated PostgreSQL database for the run (dropped afterwards); yields its URL."""
    import psycopg  # the project's postgres extra

    name = f"mcp_bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = parts._replace(path=f"/{name}").geturl()
    try:
        migrate_database(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available(admin_url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(admin_url, connect_timeout=2):
            return True
    except Exception:
        return False
