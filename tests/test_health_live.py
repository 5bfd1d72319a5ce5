"""The readiness probe on a real worker whose Redis (a private redis-server) stops and comes back.

Liveness stays 200 throughout (a worker must not be restarted for its Redis's sake); readiness is
503 naming the store and the channel layer while Redis is down, and 200 again once it is back,
without restarting the worker.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.live import LiveServer, free_port

pytestmark = [pytest.mark.live, pytest.mark.redis]


class PrivateRedis:
    """A redis-server of the test's own on a free port: stopped and started at will."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import redis

                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


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


def probe(base: str, kind: str) -> httpx.Response:
    return httpx.get(f"{base}/mcp/health/{kind}", timeout=10)


def test_readiness_follows_redis_down_and_back_while_liveness_stays_up(
    private_redis: PrivateRedis, server_factory: Callable[..., LiveServer]
) -> None:
    worker = server_factory(redis_url=private_redis.url, redis_prefix=uuid.uuid4().hex[:8])
    ready = probe(worker.url, "ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "store": "ok", "channel_layer": "ok", "draining": "no"}

    private_redis.stop()
    began = time.monotonic()
    down = probe(worker.url, "ready")
    took = time.monotonic() - began
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    checks = down.json()["checks"]
    assert checks["store"].startswith("failed") and checks["channel_layer"].startswith("failed"), checks
    assert checks["database"] == "ok"
    assert took < 5  # each check is bounded (2 s), and they run side by side
    assert probe(worker.url, "live").status_code == 200

    private_redis.start()
    back = time.monotonic()
    while True:
        again = probe(worker.url, "ready")
        if again.status_code == 200:
            break
        assert time.monotonic() - back < 15, again.text
        time.sleep(0.2)
    print(f"readiness 503 answered in {took:.2f} s with Redis down; 200 {time.monotonic() - back:.2f} s after it returned")
