"""The health probes, in-process: liveness never does I/O, readiness names what failed."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import override_settings

from mcp_sse.server.server import MCPServer

from .conftest import http

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_liveness_is_200_json_without_host_check_or_auth() -> None:
    # A load balancer probes by the node's address, which ALLOWED_HOSTS need not list.
    reply = await http("GET", "/mcp/health/live", headers={"host": "10.1.2.3:8000"})
    assert reply.status == 200 and reply.json() == {"status": "alive"}
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["cache-control"] == "no-store"


async def test_readiness_is_200_when_database_store_and_layer_answer() -> None:
    reply = await http("GET", "/mcp/health/ready/")
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "store": "ok", "channel_layer": "ok", "draining": "no"}


async def test_head_has_no_body_and_other_methods_get_405() -> None:
    head = await http("HEAD", "/mcp/health/live")
    assert head.status == 200 and head.body == b""
    post = await http("POST", "/mcp/health/ready", body={"x": 1})
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"


async def test_readiness_is_503_naming_the_store_when_redis_is_unreachable(settings: Any) -> None:
    # A real Redis client against a port nobody listens on: the store's check fails, the others pass.
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    caches = {**settings.CACHES, "dead": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}}
    with override_settings(CACHES=caches, MCP_SSE={**getattr(settings, "MCP_SSE", {}), "CACHE_ALIAS": "dead"}):
        reply = await http("GET", "/mcp/health/ready")
    assert reply.status == 503 and reply.headers["retry-after"] == "5"
    body = reply.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["store"].startswith("failed: ") and "Connection" in body["checks"]["store"]
    assert body["checks"]["database"] == "ok" and body["checks"]["draining"] == "no"


async def test_readiness_is_503_while_the_process_drains() -> None:
    server = MCPServer()
    try:
        await server.requests.drain(0, "stopping for a test")
        reply = await http("GET", "/mcp/health/ready")
        live = await http("GET", "/mcp/health/live")
    finally:
        server.requests.draining = False  # is_draining() looks at every server object of the process
    assert reply.status == 503 and reply.json()["checks"]["draining"].startswith("yes")
    assert live.status == 200  # still alive: it is finishing its calls
