"""mcp_sse.server.tasks: the tasks extension in-process, through the real ASGI stack
(``MCPTestClient``). Which case each test covers is in its name; the wire is 2026-07-28."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from mcp_sse import tools
from mcp_sse.models import AccessToken, CallLog, Task
from mcp_sse.registry.base import default_registry
from mcp_sse.server.leases import is_alive
from mcp_sse.testing import MCPTestClient

pytestmark = pytest.mark.django_db(transaction=True)

V = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def task_tools() -> Iterator[None]:
    async def tt_slow(seconds: float = 30.0) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    async def tt_ask(ctx: tools.Context, filename: str) -> str:
        answer = await ctx.elicit(f"Delete {filename}?", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
        return f"{filename}: {(answer.get('content') or {}).get('ok')}"

    async def tt_required() -> str:
        return "done"

    tools.tool(tt_slow, task="optional")
    tools.tool(tt_ask, task="optional")
    tools.tool(tt_required, task="required")
    yield
    for name in ("tt_slow", "tt_ask", "tt_required"):
        default_registry.remove_tool(name)


class Modern:
    """A 2026-07-28 client speaking raw JSON-RPC through MCPTestClient."""

    def __init__(self, *, token: str | None = None, tasks: bool = True) -> None:
        self.client = MCPTestClient(token=token)
        capabilities: dict[str, Any] = {"elicitation": {}}
        if tasks:
            capabilities["extensions"] = {TASKS: {}}
        self.meta = {
            "io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        }
        self.ids = iter(range(1, 10_000))

    async def send(self, method: str, params: dict[str, Any], *, name: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"mcp-protocol-version": V, "mcp-method": method}
        named = name if name is not None else params.get("name", params.get("taskId"))
        if named is not None:
            headers["mcp-name"] = str(named)
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": {**params, "_meta": self.meta}}
        status, _, content = await self.client.http("POST", json.dumps(body).encode(), headers)
        return status, json.loads(content)

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        status, message = await self.send("tools/call", {"name": tool, "arguments": arguments or {}})
        assert status == 200, message
        return message

    async def get(self, task_id: str) -> dict[str, Any]:
        status, message = await self.send("tasks/get", {"taskId": task_id})
        assert status == 200, message
        return message

    async def until(self, task_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.get(task_id)
            if message.get("result", {}).get("status") in statuses:
                return dict(message["result"])
            assert time.monotonic() < deadline, f"task {task_id} never reached {statuses}: {message}"
            await asyncio.sleep(0.1)


async def test_a_declaring_call_gets_a_flat_create_task_result_then_the_outcome(task_tools: None) -> None:
    client = Modern()
    created = (await client.call("tt_slow", {"seconds": 0.3}))["result"]
    assert created["resultType"] == "task" and created["status"] == "working"
    assert set(created) >= {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"}
    assert not {"result", "error", "inputRequests", "requestState", "content"} & set(created)
    assert len(created["taskId"]) >= 40  # 256 random bits
    # Durable before the answer: the row is there, and its worker holds the lease.
    assert await Task.objects.filter(pk=created["taskId"]).aexists()
    assert await is_alive(f"task:{created['taskId']}")
    done = await client.until(created["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "slept 0.3" and done["resultType"] == "complete"
    assert not await is_alive(f"task:{created['taskId']}")  # released once ended
    await client.client.flush_call_log()
    assert await CallLog.objects.filter(tool="tt_slow", outcome="ok").acount() == 1


async def test_a_call_that_does_not_declare_tasks_runs_inline(task_tools: None) -> None:
    result = (await Modern(tasks=False).call("tt_slow", {"seconds": 0}))["result"]
    assert result["resultType"] == "complete" and result["content"][0]["text"] == "slept 0.0"
    assert not await Task.objects.aexists()


async def test_a_required_task_refuses_a_caller_without_the_extension(task_tools: None) -> None:
    _status, message = await Modern(tasks=False).send("tools/call", {"name": "tt_required", "arguments": {}})
    assert message["error"]["code"] == -32021
    assert message["error"]["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}


@pytest.mark.parametrize("method", ["tasks/get", "tasks/update", "tasks/cancel"])
async def test_task_methods_need_the_extension_before_any_lookup(method: str) -> None:
    _status, message = await Modern(tasks=False).send(method, {"taskId": "gate-test", "inputResponses": {}})
    assert message["error"]["code"] == -32021


async def test_an_unknown_id_and_another_callers_id_get_the_same_invalid_params(task_tools: None) -> None:
    from asgiref.sync import sync_to_async

    users = get_user_model().objects
    alice, bob = await users.acreate(username="alice"), await users.acreate(username="bob")
    _, alice_token = await sync_to_async(AccessToken.objects.create_token)(alice, name="alice")
    _, bob_token = await sync_to_async(AccessToken.objects.create_token)(bob, name="bob")
    owner, other = Modern(token=alice_token), Modern(token=bob_token)
    task_id = (await owner.call("tt_slow", {"seconds": 0.2}))["result"]["taskId"]
    for method in ("tasks/get", "tasks/update", "tasks/cancel"):
        _status, stolen = await other.send(method, {"taskId": task_id, "inputResponses": {}})
        _status, unknown = await other.send(method, {"taskId": "no-such-task", "inputResponses": {}})
        assert stolen["error"]["code"] == unknown["error"]["code"] == -32602
        assert stolen["error"]["message"].startswith("Unknown task")
    assert (await owner.until(task_id, "completed"))["status"] == "completed"
    await owner.client.flush_call_log()  # before the tokens the rows name are gone


async def test_questions_make_the_task_input_required_until_tasks_update_answers(task_tools: None) -> None:
    client = Modern()
    task_id = (await client.call("tt_ask", {"filename": "a.txt"}))["result"]["taskId"]
    waiting = await client.until(task_id, "input_required")
    [(key, request)] = waiting["inputRequests"].items()
    assert request["method"] == "elicitation/create" and "a.txt" in request["params"]["message"]
    # An unknown key is ignored; a malformed answer to a real key is invalid params.
    _status, ack = await client.send("tasks/update", {"taskId": task_id, "inputResponses": {"nope": {"x": 1}}})
    assert ack["result"] == {"resultType": "complete", **{k: v for k, v in ack["result"].items() if k == "_meta"}}
    _status, bad = await client.send("tasks/update", {"taskId": task_id, "inputResponses": {key: {"action": "maybe"}}})
    assert bad["error"]["code"] == -32602
    answer = {key: {"action": "accept", "content": {"ok": True}}}
    _status, ack = await client.send("tasks/update", {"taskId": task_id, "inputResponses": answer})
    assert ack["result"]["resultType"] == "complete"
    done = await client.until(task_id, "completed")
    assert done["result"]["content"][0]["text"] == "a.txt: True"


async def test_cancel_stops_the_running_tool_and_is_idempotent(task_tools: None) -> None:
    client = Modern()
    task_id = (await client.call("tt_slow", {"seconds": 60}))["result"]["taskId"]
    _status, ack = await client.send("tasks/cancel", {"taskId": task_id})
    assert set(ack["result"]) <= {"resultType", "_meta"} and ack["result"]["resultType"] == "complete"
    ended = await client.until(task_id, "cancelled", timeout=5)
    assert "result" not in ended and "error" not in ended
    _status, again = await client.send("tasks/cancel", {"taskId": task_id})
    assert again["result"]["resultType"] == "complete"
    await client.client.flush_call_log()
    assert await CallLog.objects.filter(tool="tt_slow", outcome="cancelled").acount() == 1


async def test_a_working_task_whose_worker_is_gone_is_reported_failed() -> None:
    """A row left ``working`` with no lease (its worker was killed) reads as failed, not working."""
    client = Modern()
    await Task.objects.acreate(id="orphan-task-id", principal="anonymous", tool="tt_slow", status="working")
    lost = (await client.get("orphan-task-id"))["result"]
    assert lost["status"] == "failed"
    assert lost["error"]["code"] == -32603 and lost["error"]["data"] == {"reason": "worker-lost"}


async def test_a_task_past_its_ttl_is_unknown() -> None:
    client = Modern()
    await Task.objects.acreate(
        id="old-task-id",
        principal="anonymous",
        tool="tt_slow",
        status="completed",
        ttl_ms=1000,
        created=timezone.now() - timedelta(seconds=5),
    )
    _status, message = await client.send("tasks/get", {"taskId": "old-task-id"})
    assert message["error"]["code"] == -32602
    assert not await Task.objects.filter(pk="old-task-id").aexists()


async def test_mcp_name_must_carry_the_task_id(task_tools: None) -> None:
    status, message = await Modern().send("tasks/get", {"taskId": "abc"}, name="something-else")
    assert status == 400 and message["error"]["code"] == -32020


def test_registrations_check_their_task_mode() -> None:
    with pytest.raises(ValueError, match="task="):
        tools.tool(lambda: None, name="tt_bad", task="sometimes")
    from demo_library.models import Book

    made = tools.register_model(Book, name_prefix="tt_book", actions=("list", "get"), task={"list": "optional"})
    try:
        assert {t.name: t.task for t in made} == {"tt_book_list": "optional", "tt_book_get": None}
    finally:
        for made_tool in made:
            default_registry.remove_tool(made_tool.name)


@pytest.mark.parametrize(("key", "value", "check_id"), [("TASK_TTL_MS", 0, "mcp_sse.E060"), ("TASK_POLL_INTERVAL_MS", 1.5, "mcp_sse.E061")])
def test_task_settings_are_checked(key: str, value: object, check_id: str) -> None:
    from django.test import override_settings

    from mcp_sse import checks

    with override_settings(MCP_SSE={key: value}):
        assert check_id in [e.id for e in checks.check_settings()]


async def test_the_admin_cancel_action_stops_a_running_task(task_tools: None) -> None:
    """The admin's action takes the same path as tasks/cancel: the flag the running worker watches."""
    from asgiref.sync import sync_to_async
    from django.test import Client

    client = Modern()
    task_id = (await client.call("tt_slow", {"seconds": 60}))["result"]["taskId"]
    boss = await get_user_model().objects.acreate(username="boss", is_staff=True, is_superuser=True)
    admin = Client()
    await sync_to_async(admin.force_login)(boss)
    listing = await sync_to_async(admin.get)("/admin/mcp_sse/task/")
    assert listing.status_code == 200 and "tt_slow" in listing.content.decode()
    posted = await sync_to_async(admin.post)("/admin/mcp_sse/task/", {"action": "cancel_tasks", "_selected_action": [task_id]})
    assert posted.status_code == 302
    ended = await client.until(task_id, "cancelled", timeout=5)
    assert ended["status"] == "cancelled"
    detail = await sync_to_async(admin.get)(f"/admin/mcp_sse/task/{task_id}/change/")
    assert detail.status_code == 200 and 'name="tool"' not in detail.content.decode()  # read-only


async def test_a_task_cut_off_by_a_drain_ends_failed_saying_why(task_tools: None) -> None:
    """A worker stopping (SIGTERM) gives its tasks DRAIN_SECONDS, then fails the rest."""
    from mcp_sse.server.requests import lifecycles

    client = Modern()
    task_id = (await client.call("tt_slow", {"seconds": 60}))["result"]["taskId"]
    [lifecycle] = [found for found in lifecycles() if f"task:{task_id}" in found.inflight]
    try:
        assert await lifecycle.drain(0.2, "cut off for a test") == [f"task:{task_id}"]
    finally:
        lifecycle.draining = False  # the in-process app serves the following tests
    failed = await client.until(task_id, "failed", timeout=5)
    assert failed["error"]["data"] == {"reason": "shutdown"}
    assert failed["error"]["message"] == "cut off for a test"
