"""mcp_sse.server.leases: a held lease is visible to others, released on exit, and expires by
itself when its holder stops renewing (a killed worker)."""

from __future__ import annotations

import asyncio

import pytest
from django.core.checks import Error
from django.test import override_settings

from mcp_sse import checks
from mcp_sse.server.leases import Lease, is_alive, lease_key
from mcp_sse.store import shared_cache


async def test_a_held_lease_is_alive_and_gone_once_released() -> None:
    assert not await is_alive("call-1")
    async with Lease("call-1", seconds=5):
        assert await is_alive("call-1")
    assert not await is_alive("call-1")


async def test_the_holder_renews_it_past_its_term() -> None:
    async with Lease("call-2", seconds=1.2):
        await asyncio.sleep(2.0)  # longer than the term: only renewals keep it
        assert await is_alive("call-2")


async def test_a_holder_that_stops_renewing_loses_it_within_the_term() -> None:
    lease = Lease("call-3", seconds=1.0)
    await lease.acquire()
    assert lease._renewer is not None
    lease._renewer.cancel()  # what kill -9 does to the renewals, without the release
    assert await is_alive("call-3")
    await asyncio.sleep(1.3)
    assert not await is_alive("call-3")
    assert await shared_cache().get(lease_key("call-3")) is None


@pytest.mark.parametrize("value", [0, -1, "15", True])
def test_lease_seconds_must_be_a_positive_number(value: object) -> None:
    with override_settings(MCP_SSE={"LEASE_SECONDS": value}):
        found = [e for e in checks.check_settings() if e.id == "mcp_sse.E015"]
    assert len(found) == 1 and isinstance(found[0], Error)
