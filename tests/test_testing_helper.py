"""mcp_sse.testing drives the real ASGI stack in-process (routing, auth, transport, dispatcher)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from mcp_sse.models import AccessToken
from mcp_sse.testing import MCPTestClient, MCPTestError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections() -> Any:
    """ORM calls from async code run in asgiref's thread; close its connections after each test
    so the test database can be dropped (PostgreSQL refuses while a session is open)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def demo_settings(**overrides: Any) -> Any:
    from django.conf import settings

    return override_settings(MCP_SSE={**settings.MCP_SSE, **overrides})


async def test_call_and_list_with_pagination() -> None:
    with demo_settings(PAGE_SIZE=3):
        async with MCPTestClient() as client:
            first = await client.request("tools/list")
            assert len(first["tools"]) == 3 and first["nextCursor"]
            everything = await client.list_tools()
            names = [t["name"] for t in everything]
            assert len(names) == len(set(names)) > 3
            assert "echo" in names
            result = await client.call_tool("echo", {"text": "in-process"})
            assert result["content"] == [{"type": "text", "text": "in-process"}]
            with pytest.raises(MCPTestError) as bad_cursor:
                await client.request("tools/list", {"cursor": "not-a-cursor"})
            assert bad_cursor.value.error["code"] == -32602


async def test_progress_and_sampling_through_the_helper() -> None:
    async def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "sampling/createMessage"
        return {"role": "assistant", "content": {"type": "text", "text": "helper-sampled"}, "model": "m"}

    async with MCPTestClient(on_request=answer) as client:
        result = await client.call_tool("slow_echo", {"text": "p", "seconds": 0.2}, progress_token="t1")
        assert result["content"][0]["text"] == "p"
        progress = [n["params"]["progress"] for n in client.notifications if n["method"] == "notifications/progress"]
        assert progress == [1, 2]
        summary = await client.call_tool("summarize", {"text": "s"})
        assert summary["content"][0]["text"] == "Summary: helper-sampled"


async def test_authentication_is_part_of_the_stack() -> None:
    user = await get_user_model().objects.acreate(username="helper-user")
    _, plaintext = await _create_token(user)
    with demo_settings(REQUIRE_AUTH=True):
        with pytest.raises(MCPTestError) as refused:
            await MCPTestClient().initialize()
        assert refused.value.status == 401
        async with MCPTestClient(token=plaintext) as client:
            assert (await client.call_tool("echo", {"text": "authed"}))["content"][0]["text"] == "authed"
        # The call was logged against the token's user (flushed when the client closed).
        from mcp_sse.models import CallLog

        entry = await CallLog.objects.aget(tool="echo", user_id=user.pk)
        assert entry.arguments == {"text": "authed"} and entry.outcome == "ok" and entry.transport == "streamable-http"


async def _create_token(user: Any) -> tuple[AccessToken, str]:
    from asgiref.sync import sync_to_async

    return await sync_to_async(AccessToken.objects.create_token)(user, name="t")


@pytest.mark.parametrize(
    ("allowed_hosts", "sent"),
    [
        (["testserver"], "testserver"),  # what pytest-django leaves on a startproject site
        (["api.example.com", "testserver"], "testserver"),
        (["api.example.com"], "api.example.com"),
        ([".example.org"], "example.org"),
        (["*"], "testserver"),
    ],
)
async def test_the_default_host_is_one_allowed_hosts_accepts(allowed_hosts: list[str], sent: str) -> None:
    with override_settings(ALLOWED_HOSTS=allowed_hosts):
        async with MCPTestClient() as client:
            assert dict(client.headers())[b"host"] == sent.encode()
            assert (await client.call_tool("echo", {"text": "host ok"}))["content"][0]["text"] == "host ok"


async def test_an_explicit_host_is_sent_and_checked() -> None:
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        with pytest.raises(MCPTestError) as refused:
            await MCPTestClient(host="localhost").initialize()
        assert refused.value.status == 421
        async with MCPTestClient(host="testserver") as client:
            assert client.session_id
