"""System checks report registration mistakes and deployment traps with stable ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from mcp_sse import checks
from mcp_sse.registry.base import default_registry
from mcp_sse.tools import tool


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    tools = dict(default_registry.tools)
    problems = list(default_registry.problems)
    yield
    default_registry.tools.clear()
    default_registry.tools.update(tools)
    default_registry.problems[:] = problems


def test_registry_is_clean_in_the_demo() -> None:
    assert checks.check_registry() == []


def test_duplicate_and_invalid_names_are_errors(scratch_registry: None) -> None:
    @tool(name="echo")
    def another_echo(text: str) -> str:
        return text

    @tool(name="has space")
    def badly_named() -> str:
        return ""

    ids = sorted(e.id for e in checks.check_registry())
    assert ids == ["mcp_sse.E004", "mcp_sse.E005"]
    # The first registration wins; nothing was raised at import time.
    assert default_registry.tools["echo"].source.endswith("demo_library.mcp_tools.echo")


def test_channel_layer_and_asgi_application_are_required() -> None:
    with override_settings(CHANNEL_LAYERS={}, ASGI_APPLICATION=None):
        assert sorted(e.id for e in checks.check_channels()) == ["mcp_sse.E001", "mcp_sse.E003"]


def test_in_memory_layer_warns_in_production() -> None:
    with override_settings(DEBUG=False):
        assert [e.id for e in checks.check_channels()] == ["mcp_sse.W002"]


def test_deployment_traps() -> None:
    with override_settings(
        MIDDLEWARE=["django.middleware.gzip.GZipMiddleware"],
        MCP_SSE={"REQUIRE_AUTH": False, "ALLOWED_ORIGINS": "*"},
    ):
        ids = sorted(e.id for e in checks.check_deployment())
    assert ids == ["mcp_sse.W006", "mcp_sse.W007", "mcp_sse.W008", "mcp_sse.W009"]


def test_unknown_settings_warn() -> None:
    with override_settings(MCP_SSE={"PAGE_SIZ": 5}):
        assert [e.id for e in checks.check_settings()] == ["mcp_sse.W010"]


def test_a_bad_thread_count_is_an_error() -> None:
    for bad in (0, -2, "8", True):
        with override_settings(MCP_SSE={"SYNC_TOOL_THREADS": bad}):
            assert [e.id for e in checks.check_settings()] == ["mcp_sse.E012"]
    with override_settings(MCP_SSE={"SYNC_TOOL_THREADS": 8}):
        assert checks.check_settings() == []


def test_small_locmem_cache_warns() -> None:
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert [e.id for e in checks.check_cache_size()] == ["mcp_sse.W011"]
    assert checks.check_cache_size() == []  # the demo raises MAX_ENTRIES
