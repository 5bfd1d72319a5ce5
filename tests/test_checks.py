"""System checks report registration mistakes and deployment traps with stable ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def test_a_channel_layer_that_cannot_be_imported_is_an_error() -> None:
    """channels_redis named but not installed: every initialize would be a 500."""
    layers = {
        "default": {"BACKEND": "no_such_package.core.RedisChannelLayer"},
        "other": {"BACKEND": "mcp_sse.layers.NoSuchLayer"},
        "empty": {},
    }
    with override_settings(CHANNEL_LAYERS=layers):
        problems = checks.check_channels()
    assert [e.id for e in problems] == ["mcp_sse.E013"] * 3
    assert "'default'" in problems[0].msg and "No module named 'no_such_package'" in problems[0].msg
    assert "mcp-sse[redis]" in (problems[0].hint or "")
    assert checks.check_channels() == []  # the demo's layer imports


def test_a_channel_layer_that_cannot_be_imported_fails_manage_py_check() -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with (
        override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis_missing.core.RedisChannelLayer"}}),
        pytest.raises(SystemCheckError, match=r"mcp_sse\.E013"),
    ):
        call_command("check")


@pytest.mark.parametrize("debug", [True, False])
def test_check_deploy_warns_about_the_in_memory_layer_whatever_debug(debug: bool) -> None:
    with override_settings(DEBUG=debug):
        assert "mcp_sse.W002" in [e.id for e in checks.check_deployment()]
        assert "mcp_sse.W002" not in [e.id for e in checks.check_channels()]  # plain `check`: one process is fine
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {}}}
    with override_settings(DEBUG=debug, CHANNEL_LAYERS=layers):
        assert "mcp_sse.W002" not in [e.id for e in checks.check_deployment()]


def test_deployment_traps() -> None:
    with override_settings(
        MIDDLEWARE=["django.middleware.gzip.GZipMiddleware"],
        MCP_SSE={"REQUIRE_AUTH": False, "ALLOWED_ORIGINS": "*"},
    ):
        ids = sorted(e.id for e in checks.check_deployment())
    assert ids == ["mcp_sse.W002", "mcp_sse.W006", "mcp_sse.W007", "mcp_sse.W008", "mcp_sse.W009"]


def test_unknown_settings_warn() -> None:
    with override_settings(MCP_SSE={"PAGE_SIZ": 5}):
        assert [e.id for e in checks.check_settings()] == ["mcp_sse.W010"]


def test_a_bad_thread_count_is_an_error() -> None:
    for bad in (0, -2, "8", True):
        with override_settings(MCP_SSE={"SYNC_TOOL_THREADS": bad}):
            assert [e.id for e in checks.check_settings()] == ["mcp_sse.E012"]
    with override_settings(MCP_SSE={"SYNC_TOOL_THREADS": 8}):
        assert checks.check_settings() == []


def test_a_bad_drain_time_is_an_error() -> None:
    for bad in (-1, "30", True, None):
        with override_settings(MCP_SSE={"DRAIN_SECONDS": bad}):
            assert [e.id for e in checks.check_settings()] == ["mcp_sse.E016"]
    for good in (0, 2.5, 30):
        with override_settings(MCP_SSE={"DRAIN_SECONDS": good}):
            assert checks.check_settings() == []


def test_unavailable_retry_after_must_be_whole_seconds() -> None:
    for bad in (0, -1, 1.5, "2", True, None):
        with override_settings(MCP_SSE={"UNAVAILABLE_RETRY_AFTER": bad}):
            assert [e.id for e in checks.check_settings()] == ["mcp_sse.E018"]
    with override_settings(MCP_SSE={"UNAVAILABLE_RETRY_AFTER": 5}):
        assert checks.check_settings() == []


def test_telemetry_switches_must_be_booleans() -> None:
    for name in ("OTEL_ENABLED", "OTEL_CAPTURE_CONTENT"):
        for bad in ("yes", 1, None):
            with override_settings(MCP_SSE={name: bad}):
                assert [e.id for e in checks.check_settings()] == ["mcp_sse.E080"]
        with override_settings(MCP_SSE={name: False}):
            assert checks.check_settings() == []


def test_small_locmem_cache_warns() -> None:
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert [e.id for e in checks.check_cache_size()] == ["mcp_sse.W011"]
    assert checks.check_cache_size() == []  # the demo raises MAX_ENTRIES


@pytest.mark.parametrize(
    ("oauth", "ids"),
    [
        ({"AUTHORIZATION_SERVERS": ["https://auth.example.com"]}, []),
        ({"AUTHORIZATION_SERVERS": ["http://localhost:8001/o"], "RESOURCE": "https://x.example/mcp"}, []),
        ("https://auth.example.com", ["mcp_sse.E070"]),
        ({"AUTHORIZATION_SERVER": ["https://auth.example.com"]}, ["mcp_sse.E071"]),
        ({"AUTHORIZATION_SERVERS": "https://auth.example.com"}, ["mcp_sse.E072"]),
        ({"AUTHORIZATION_SERVERS": ["http://auth.example.com"]}, ["mcp_sse.E073"]),
        ({"AUTHORIZATION_SERVERS": ["auth.example.com"]}, ["mcp_sse.E073"]),
        ({"SCOPES": "mcp"}, ["mcp_sse.E074"]),
        ({"REQUIRED_SCOPES": ["mcp read"]}, ["mcp_sse.E074"]),
        ({"RESOURCE": "/mcp"}, ["mcp_sse.E075"]),
        ({"RESOURCE": "https://x.example/mcp#frag"}, ["mcp_sse.E075"]),
        ({"SCOPES": ["mcp", "offline_access"]}, ["mcp_sse.W076"]),
    ],
)
def test_oauth_settings_are_checked(oauth: object, ids: list[str]) -> None:
    with override_settings(MCP_SSE={"OAUTH": oauth}):
        assert [e.id for e in checks.check_settings()] == ids


# -- Redis Cluster for the channel layer (mcp_sse.E017) -----------------------------------------
def _layer(*hosts: object, backend: str = "mcp_sse.layers.RedisChannelLayer") -> dict[str, object]:
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": list(hosts)}}}


def test_a_layer_configured_for_redis_cluster_is_refused() -> None:
    for host in ("redis+cluster://127.0.0.1:7000/0", {"startup_nodes": [{"host": "a", "port": 7000}]}):
        for backend in ("mcp_sse.layers.RedisChannelLayer", "channels_redis.core.RedisChannelLayer"):
            with override_settings(CHANNEL_LAYERS=_layer(host, backend=backend)):
                assert [e.id for e in checks.check_layer_not_cluster()] == ["mcp_sse.E017"]
    with override_settings(CHANNEL_LAYERS=_layer("redis://127.0.0.1:6379/0")):
        assert checks.check_layer_not_cluster() == []
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        assert checks.check_layer_not_cluster() == []


def test_deploy_check_asks_redis_whether_it_runs_in_cluster_mode(tmp_path: Path) -> None:
    """A real redis-server with cluster mode on, behind a plain redis:// URL; and a plain one."""
    import shutil

    from tests.live import IN_CI, PrivateRedis, free_port

    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")
    # Started one after the other: each takes its free port before the next one looks for one.
    # The cluster bus port is given: by default it is the port + 10000, over 65535 for a free
    # port above 55535, and redis-server refuses to start.
    bus_port = str(free_port())
    clustered = PrivateRedis(
        tmp_path, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", bus_port
    )
    clustered.start()
    plain = PrivateRedis(tmp_path)
    try:
        plain.start()
        with override_settings(CHANNEL_LAYERS=_layer(clustered.url)):
            assert checks.check_layer_not_cluster() == []  # the URL alone does not tell
            assert [e.id for e in checks.check_layer_redis_not_in_cluster_mode()] == ["mcp_sse.E017"]
        with override_settings(CHANNEL_LAYERS=_layer({"address": plain.url})):
            assert checks.check_layer_redis_not_in_cluster_mode() == []
        dead = f"redis://127.0.0.1:{free_port()}/0"
        with override_settings(CHANNEL_LAYERS=_layer(dead)):
            assert checks.check_layer_redis_not_in_cluster_mode() == []  # unreachable: readiness's business
    finally:
        clustered.stop()
        plain.stop()
