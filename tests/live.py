"""Real servers for tests: Daphne (or uvicorn) subprocesses on free ports, with their own DB.

Every live test talks to a real server process over real sockets. The database of the live
servers is prepared once per test session (SQLite file locally; a fresh PostgreSQL database
under CI) and shared by all servers of the session, so two workers see the same tokens/rows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
DEMO_SETTINGS = "demo_project.settings"
# The demo site plus the fixture tools, resources and prompts of the official conformance suite.
CONFORMANCE_SETTINGS = "conformance.settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"server did not listen on port {port} within {timeout}s")


def redis_available(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class LiveDatabase:
    url: str
    description: str
    env: dict[str, str] = field(default_factory=dict)

    def manage(self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True) -> str:
        env = {**os.environ, **self.env, **(extra_env or {})}
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code)

    def create_user(self, username: str, *, superuser: bool = False, perms: tuple[str, ...] = ()) -> None:
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.models import Permission\n"
            f"U = get_user_model(); u, _ = U.objects.get_or_create(username={username!r})\n"
            f"u.is_superuser = {superuser!r}; u.is_staff = {superuser!r}; u.set_password('pw'); u.save()\n"
            f"for p in {list(perms)!r}:\n"
            "    app, code = p.split('.')\n"
            "    u.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=code))\n"
        )

    def create_token(self, username: str, *extra: str) -> str:
        return self.manage("mcp_token", "create", username, *extra).strip().splitlines()[-1]


def prepare_database(tmp_dir: Path) -> Iterator[LiveDatabase]:
    """A migrated database for live servers: PostgreSQL under CI (or when DATABASE_URL points at
    one), else a SQLite file."""
    base_url = os.environ.get("DATABASE_URL", "")
    if base_url.startswith("postgres"):
        import psycopg

        name = f"mcp_live_{uuid.uuid4().hex[:10]}"
        admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = base_url.rsplit("/", 1)[0] + "/" + name
        db = LiveDatabase(url, f"PostgreSQL ({name})", {"DATABASE_URL": url})
        try:
            db.manage("migrate", "--noinput")
            yield db
        finally:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_dir / "live.sqlite3"
        url = f"sqlite:///{path}"
        db = LiveDatabase(url, f"SQLite ({path.name})", {"DATABASE_URL": url})
        db.manage("migrate", "--noinput")
        yield db


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    # REDIS_URL and prefixes of a multi-process server, for other processes that must share them.
    redis_env: dict[str, str] = field(default_factory=dict)

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(
    db: LiveDatabase,
    log_dir: Path,
    *,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    extra_env: dict[str, str] | None = None,
    server: str = "daphne",  # or "mcp-daphne" (python -m mcp_sse.daphne_server), "uvicorn"
    settings: str = DEMO_SETTINGS,  # or CONFORMANCE_SETTINGS: the demo plus the suite's fixtures
) -> LiveServer:
    port = free_port()
    # A short drain: stop() (SIGTERM) then waits at most that long for calls a test left running.
    env = {
        **os.environ,
        **db.env,
        "DJANGO_SETTINGS_MODULE": settings,
        "MCP_DRAIN_SECONDS": "5",
        **(extra_env or {}),
    }
    env.pop("REDIS_URL", None)
    redis_env: dict[str, str] = {}
    if redis_url:
        redis_env = {
            "REDIS_URL": redis_url,
            "MCP_LAYER_PREFIX": f"asgi-{redis_prefix}",
            "MCP_CACHE_PREFIX": f"mcp-{redis_prefix}",
        }
        env.update(redis_env)
    log_path = log_dir / f"{server}-{port}.log"
    if server in ("daphne", "mcp-daphne"):
        cmd = [
            sys.executable,
            "-m",
            "daphne" if server == "daphne" else "mcp_sse.daphne_server",
            "-v",
            "0",
            "--application-close-timeout",
            "60",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "demo_project.asgi:application",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--no-access-log",
            "--log-level",
            "warning",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "demo_project.asgi:application",
        ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
    except Exception:
        process.kill()
        raise RuntimeError(f"{server} did not start:\n{log_path.read_text(errors='replace')}") from None
    return LiveServer(f"http://127.0.0.1:{port}", port, process, log_path, redis_env)


async def wait_for_call_log(db: LiveDatabase, marker: str, timeout: float = 15) -> str:
    """The outcome recorded for the call whose ``text`` argument is ``marker`` (the call log is
    written in batches off the call path, so poll for it)."""
    import asyncio

    deadline = time.monotonic() + timeout
    code = (
        "from mcp_sse.models import CallLog\n"
        f"row = CallLog.objects.filter(arguments__text={marker!r}).first()\n"
        "print(row.outcome if row else '')"
    )
    while time.monotonic() < deadline:
        outcome = (await asyncio.to_thread(db.shell, code)).strip()
        if outcome:
            return outcome
        await asyncio.sleep(0.2)
    raise AssertionError(f"no call log entry for {marker}")


class PrivateRedis:
    """A redis-server of the test's own on a free port: stopped and started at will."""

    def __init__(self, directory: Path, *extra_args: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.extra_args = list(extra_args)
        self.log_path = directory / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"the private redis-server did not start:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
