"""Tasks across Daphne processes sharing Redis and the database: a task created on worker A is
read, answered and cancelled through worker B, and a task whose worker is killed (kill -9) is
reported ``failed`` within the lease time instead of ``working`` for ever."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.live import CONFORMANCE_SETTINGS, LiveServer

pytestmark = [pytest.mark.live, pytest.mark.redis]

V = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
META = {
    "io.modelcontextprotocol/protocolVersion": V,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "extensions": {TASKS: {}}},
    "io.modelcontextprotocol/clientInfo": {"name": "multiworker-tasks", "version": "1"},
}
LEASE_SECONDS = 2.0


@pytest.fixture
def task_pair(redis_url: str, server_factory: Callable[..., LiveServer]) -> tuple[LiveServer, LiveServer]:
    prefix = uuid.uuid4().hex[:8]
    lease = {"MCP_LEASE_SECONDS": str(LEASE_SECONDS)}
    kwargs: dict[str, Any] = {"redis_url": redis_url, "redis_prefix": prefix, "settings": CONFORMANCE_SETTINGS}
    return server_factory(**kwargs, extra_env=lease), server_factory(**kwargs, extra_env=lease)


async def send(server: LiveServer, method: str, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name", params.get("taskId"))
    headers = {"mcp-protocol-version": V, "mcp-method": method, "mcp-name": str(name)}
    body = {"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": method, "params": {**params, "_meta": META}}
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(server.mcp_url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


async def create(server: LiveServer, tool: str, arguments: dict[str, Any]) -> str:
    created = await send(server, "tools/call", {"name": tool, "arguments": arguments})
    assert created["resultType"] == "task", created
    return str(created["taskId"])


async def until(server: LiveServer, task_id: str, *statuses: str, timeout: float = 20) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    while True:
        got = await send(server, "tasks/get", {"taskId": task_id})
        if got["status"] in statuses:
            return got, time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{task_id} stayed {got['status']}, wanted {statuses}"
        await asyncio.sleep(0.1)


async def test_a_task_made_on_a_is_read_on_b_at_once(task_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = task_pair
    task_id = await create(a, "slow_compute", {"seconds": 1, "label": "cross"})
    first = await send(b, "tasks/get", {"taskId": task_id})  # durable before CreateTaskResult
    assert first["status"] == "working"
    done, _ = await until(b, task_id, "completed")
    assert "cross" in done["result"]["content"][0]["text"]


async def test_a_task_asking_on_a_is_answered_through_b(task_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = task_pair
    task_id = await create(a, "confirm_delete", {"filename": "report.pdf"})
    waiting, _ = await until(b, task_id, "input_required")
    [key] = waiting["inputRequests"]
    answer = {key: {"action": "accept", "content": {"confirm": True}}}
    await send(b, "tasks/update", {"taskId": task_id, "inputResponses": answer})
    done, _ = await until(a, task_id, "completed")
    assert done["result"]["content"][0]["text"] == "report.pdf deleted"


async def test_a_task_running_on_a_is_cancelled_from_b(task_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = task_pair
    task_id = await create(a, "slow_compute", {"seconds": 60})
    await send(b, "tasks/cancel", {"taskId": task_id})
    ended, waited = await until(b, task_id, "cancelled", "completed", "failed", timeout=10)
    assert ended["status"] == "cancelled" and waited < 5, (ended, waited)


async def test_a_task_whose_worker_is_killed_fails_within_the_lease(task_pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = task_pair
    task_id = await create(a, "slow_compute", {"seconds": 60})
    assert (await send(b, "tasks/get", {"taskId": task_id}))["status"] == "working"
    os.kill(a.process.pid, signal.SIGKILL)
    a.process.wait(10)
    failed, waited = await until(b, task_id, "failed", "completed", "cancelled", timeout=LEASE_SECONDS * 5)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == -32603 and failed["error"]["data"] == {"reason": "worker-lost"}
    assert waited <= LEASE_SECONDS + 2, f"reported failed {waited:.1f} s after the kill (lease {LEASE_SECONDS} s)"
    print(f"task reported failed {waited:.2f} s after kill -9 (lease {LEASE_SECONDS} s)")


async def test_a_listen_stream_on_b_hears_the_task_on_a_end(task_pair: tuple[LiveServer, LiveServer]) -> None:
    """notifications/tasks reach a subscriptions/listen stream that listed the task, across workers;
    a task id the caller does not own is not acknowledged."""
    from tests.sse_client import events, next_event

    a, b = task_pair
    task_id = await create(a, "slow_compute", {"seconds": 1.5, "label": "heard"})
    body = {
        "jsonrpc": "2.0",
        "id": "listen-tasks",
        "method": "subscriptions/listen",
        "params": {"notifications": {"taskIds": [task_id, "not-mine"]}, "_meta": META},
    }
    headers = {
        "mcp-protocol-version": V,
        "mcp-method": "subscriptions/listen",
        "accept": "text/event-stream, application/json",
    }
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(20, read=30)) as http,
        http.stream("POST", b.mcp_url, json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        stream = events(response)
        ack = (await next_event(stream)).json()
        assert ack["params"]["notifications"] == {"taskIds": [task_id]}
        heard = (await next_event(stream, timeout=15)).json()
    assert heard["method"] == "notifications/tasks"
    assert heard["params"]["taskId"] == task_id and heard["params"]["status"] == "completed"
    assert "heard" in heard["params"]["result"]["content"][0]["text"]
    assert heard["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-tasks"
