"""`make demo` shows the demo: the conformance suite's fixtures live in conformance.settings only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from tests.live import DEMO_SETTINGS, ROOT, LiveServer

pytestmark = pytest.mark.live


def is_fixture(name: str) -> bool:
    """A name or URI of the conformance app (conformance/mcp_tools.py)."""
    return name.startswith(("test_", "test://")) or name in (
        "json_schema_2020_12_tool",
        "template-data",
        # The tasks extension's fixtures, named as the suite calls them.
        "greet",
        "slow_compute",
        "failing_job",
        "protocol_error_job",
        "confirm_delete",
        "multi_input",
    )


async def listed(server: LiveServer) -> dict[str, set[str]]:
    """Tool names, resource URIs, template names and prompt names a client sees."""
    async with Client(server.mcp_url, mode="legacy") as client:
        return {
            "tools": {tool.name for tool in (await client.list_tools()).tools},
            "resources": {str(resource.uri) for resource in (await client.list_resources()).resources},
            "templates": {t.name for t in (await client.list_resource_templates()).resource_templates},
            "prompts": {prompt.name for prompt in (await client.list_prompts()).prompts},
        }


async def test_the_demo_lists_no_conformance_fixtures(daphne_server: LiveServer) -> None:
    demo = await listed(daphne_server)
    assert {"echo", "library_report"} <= demo["tools"]
    fixtures = {kind: sorted(filter(is_fixture, names)) for kind, names in demo.items()}
    assert fixtures == {"tools": [], "resources": [], "templates": [], "prompts": []}


async def test_the_conformance_site_is_the_demo_plus_the_fixtures(
    daphne_server: LiveServer, conformance_server: LiveServer
) -> None:
    demo, conformance = await listed(daphne_server), await listed(conformance_server)
    for kind in demo:
        assert demo[kind] <= conformance[kind]
        assert all(map(is_fixture, conformance[kind] - demo[kind])), sorted(conformance[kind] - demo[kind])
    assert len(conformance["tools"] - demo["tools"]) >= 29  # and test_dynamic_tool once triggered
    assert "test://static-text" in conformance["resources"]
    assert "test_simple_prompt" in conformance["prompts"]


def test_make_demo_admin_rows_hold_no_fixtures(tmp_path: Path) -> None:
    """What `make demo` runs first (migrate) on a fresh database, then the admin's rows."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": DEMO_SETTINGS, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("REDIS_URL", None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--noinput")
    rows = [line.split("\t") for line in manage("mcp_tools", "list").splitlines()[1:]]
    names = {name for _kind, name, _state in rows}
    assert "echo" in names
    assert sorted(filter(is_fixture, names)) == []
