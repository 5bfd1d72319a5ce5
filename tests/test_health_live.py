"""The readiness probe on a real worker whose Redis (a private redis-server) stops and comes back.

Liveness stays 200 throughout (a worker must not be restarted for its Redis's sake); readiness is
503 naming the store and the channel layer while Redis is down, and 200 again once it is back,
without restarting the worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.live import LiveServer, PrivateRedis

pytestmark = [pytest.mark.live, pytest.mark.redis]


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
