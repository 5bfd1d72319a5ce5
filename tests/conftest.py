from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import (
    CONFORMANCE_SETTINGS,
    IN_CI,
    LiveDatabase,
    LiveServer,
    PrivateRedis,
    prepare_database,
    redis_available,
    start_server,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
REDIS_URL = os.environ.get("MCP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_report_header(config: Any) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    redis = "available" if redis_available(REDIS_URL) else "NOT available"
    live_db = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    return [
        f"mcp_sse: CI={IN_CI}; database tests on {db}; in-process channel layer {layer}",
        f"mcp_sse: live Daphne servers on a fresh {live_db} database; single-process servers use "
        "InMemoryChannelLayer, multi-process servers RedisChannelLayer",
        f"mcp_sse: multi-process tests on channels-redis at {REDIS_URL} ({redis})",
    ]


def _live_servers_of(item: pytest.Item) -> list[LiveServer]:
    found: list[LiveServer] = []
    for value in getattr(item, "funcargs", {}).values():
        candidates = value if isinstance(value, tuple | list) else getattr(value, "started", [value])
        found += [server for server in candidates if isinstance(server, LiveServer) and server not in found]
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed live test shows the end of each of its servers' logs: a flake seen once in CI
    can then be read, not just re-run."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.when == "call":
        for server in _live_servers_of(item):
            report.sections.append((f"log of the server at {server.url}", server.log()[-6000:] or "(empty)"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def live_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDatabase]:
    yield from prepare_database(tmp_path_factory.mktemp("live-db"))


@pytest.fixture(scope="session")
def daphne_server(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One Daphne process serving the demo site (in-memory layer), shared by the session."""
    server = start_server(live_db, tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def conformance_server(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One Daphne process serving the conformance site (conformance.settings: the demo plus the
    suite's test_* fixtures), shared by the session."""
    server = start_server(live_db, tmp_path_factory.mktemp("logs"), settings=CONFORMANCE_SETTINGS)
    yield server
    server.stop()


@pytest.fixture
def server_factory(
    live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """Start extra servers for one test (stopped after it)."""
    started: list[LiveServer] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(**kwargs: Any) -> LiveServer:
        server = start_server(live_db, logs, **kwargs)
        started.append(server)
        return server

    start.started = started  # type: ignore[attr-defined]  # for the failure report's server logs
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_url() -> str:
    """Redis for multi-process tests: required under CI, skipped (with the reason) elsewhere."""
    if not redis_available(REDIS_URL):
        if IN_CI:
            pytest.fail(f"Redis is required under CI but not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: multi-process tests need it")
    return REDIS_URL


@pytest.fixture
def redis_pair(redis_url: str, server_factory: Callable[..., LiveServer]) -> tuple[LiveServer, LiveServer]:
    """Two Daphne processes sharing one channels-redis layer and Redis cache."""
    prefix = uuid.uuid4().hex[:8]
    a = server_factory(redis_url=redis_url, redis_prefix=prefix)
    b = server_factory(redis_url=redis_url, redis_prefix=prefix)
    return a, b


@pytest.fixture
def conformance_pair(redis_url: str, server_factory: Callable[..., LiveServer]) -> tuple[LiveServer, LiveServer]:
    """Two Daphne processes serving the conformance site over one channels-redis layer and Redis cache."""
    prefix = uuid.uuid4().hex[:8]
    a = server_factory(redis_url=redis_url, redis_prefix=prefix, settings=CONFORMANCE_SETTINGS)
    b = server_factory(redis_url=redis_url, redis_prefix=prefix, settings=CONFORMANCE_SETTINGS)
    return a, b


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required under CI for the Redis fault tests")
        pytest.skip("redis-server is not installed: the Redis fault tests need their own server")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
