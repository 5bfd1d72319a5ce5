"""The official MCP conformance suite against a live Daphne server, stateless 2026-07-28 wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance_runner import failure_details, run_suite, show
from tests.live import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.conformance]

REVISION = "2026-07-28"
# Run (and reported) with --requirements but not scored for the revision.
NOT_SCORED_PREFIXES = ("tasks-",)
NOT_SCORED = ("json-schema-2020-12", "http-header-validation", "http-custom-header-server-validation")


def suite_url(server: LiveServer) -> str:
    # The DNS-rebinding scenario needs a localhost URL.
    return server.mcp_url.replace("127.0.0.1", "localhost")


def test_requirements_2026_07_28_all_scored_scenarios_pass(
    conformance_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_suite(suite_url(conformance_server), tmp_path, "--requirements", REVISION)
    show(run.summary, capsys)
    scored = {
        name: counts
        for name, counts in run.passed.items()
        if name not in NOT_SCORED and not name.startswith(NOT_SCORED_PREFIXES)
    }
    failed = [name for name, (_, failures) in scored.items() if failures]
    details = "\n".join(failure_details(tmp_path, name) for name in failed)
    assert not failed, f"failed scenarios: {failed}\n{details}"
    assert len(scored) == 37, f"expected the 37 scored scenarios, saw {len(scored)}: {sorted(scored)}"
    assert run.returncode == 0, run.output[-3000:]
    # The tasks extension's scenarios run here too (unscored for the revision): every one passes.
    tasks = {name: counts for name, counts in run.passed.items() if name.startswith(NOT_SCORED_PREFIXES)}
    failing_tasks = [name for name, (_, failures) in tasks.items() if failures]
    assert not failing_tasks, "\n".join(failure_details(tmp_path, name) for name in failing_tasks)


def test_suite_all_65_of_65(conformance_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--suite all``: every scenario of the suite, the tasks extension's included (they run on
    the stateless 2026-07-28 wire); on the code before tasks, the 9 tasks-* scenarios failed."""
    run = run_suite(suite_url(conformance_server), tmp_path, "--suite", "all")
    show(run.summary, capsys)
    failed = [name for name, (_, failures) in run.passed.items() if failures]
    details = "\n".join(failure_details(tmp_path, name) for name in failed)
    assert not failed, f"failed scenarios: {failed}\n{details}"
    assert len(run.passed) == 65, f"expected 65 scenarios, saw {len(run.passed)}: {sorted(run.passed)}"
    assert {name for name in run.passed if name.startswith("tasks-")} >= {
        "tasks-lifecycle",
        "tasks-capability-negotiation",
        "tasks-wire-fields",
        "tasks-request-state-removal",
        "tasks-mrtr-input",
        "tasks-request-headers",
        "tasks-dispatch-and-envelope",
        "tasks-required-task-error",
        "tasks-mrtr-composition",
    }
    assert run.returncode == 0, run.output[-3000:]


@pytest.mark.parametrize("scenario", NOT_SCORED)
def test_unscored_2026_scenarios_pass(
    conformance_server: LiveServer, tmp_path: Path, scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_suite(suite_url(conformance_server), tmp_path, "--scenario", scenario, "--spec-version", REVISION)
    show(run.output[-2500:], capsys)
    assert run.returncode == 0, failure_details(tmp_path, scenario) or run.output[-3000:]
    assert "0 failed" in run.output and "Passed:" in run.output
    if scenario == "json-schema-2020-12":
        # Alone it defaults to 2025-11-25; make sure the 2026 checks (SEP-2106) really ran.
        checks = "".join(path.read_text() for path in tmp_path.glob(f"server-{scenario}-*/checks.json"))
        assert f'"targetProtocolVersion": "{REVISION}"' in checks
