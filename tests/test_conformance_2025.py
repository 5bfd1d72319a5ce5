"""The official MCP conformance suite against a live Daphne server, stateful 2025 wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance_runner import failure_details, run_suite, show
from tests.live import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.conformance]

EXTRA_SCENARIOS = ("server-sse-polling", "server-session-lifecycle", "json-schema-2020-12")


def test_requirements_2025_11_25_all_scored_scenarios_pass(
    conformance_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_suite(conformance_server.mcp_url.replace("127.0.0.1", "localhost"), tmp_path, "--requirements", "2025-11-25")
    show(run.summary, capsys)
    failed = run.failed_scenarios()
    details = "\n".join(failure_details(tmp_path, name) for name in failed)
    assert not failed, f"failed scenarios: {failed}\n{details}"
    assert run.returncode == 0, run.output[-3000:]
    scored = [name for name in run.passed if name not in EXTRA_SCENARIOS]
    assert len(scored) == 30, f"expected the 30 scored scenarios, saw {len(scored)}: {sorted(scored)}"


@pytest.mark.parametrize("scenario", EXTRA_SCENARIOS)
def test_unscored_2025_scenarios_pass(
    conformance_server: LiveServer, tmp_path: Path, scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_suite(conformance_server.mcp_url.replace("127.0.0.1", "localhost"), tmp_path, "--scenario", scenario)
    show(run.output[-2500:], capsys)
    assert run.returncode == 0, failure_details(tmp_path, scenario) or run.output[-3000:]
    assert "0 failed" in run.output and "Passed:" in run.output
