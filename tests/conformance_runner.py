"""Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance, Node 22)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import IN_CI, ROOT

NODE_DIR = ROOT / ".cache" / "node"
CLI = NODE_DIR / "node_modules" / ".bin" / "conformance"
NODE_BIN = NODE_DIR / "node_modules" / "node" / "bin"


@dataclass
class SuiteRun:
    returncode: int
    output: str
    summary: str
    passed: dict[str, tuple[int, int]]  # scenario -> (checks passed, checks failed)

    def failed_scenarios(self) -> list[str]:
        return [name for name, (_, failed) in self.passed.items() if failed]


def show(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print past pytest's output capture, so the suite's summary is in every test log."""
    with capsys.disabled():
        print("\n" + text)


def require_suite() -> None:
    if not CLI.exists():
        if IN_CI:
            pytest.fail("the conformance suite is not installed (make node)")
        pytest.skip("the conformance suite is not installed: run `make node` (needs npm)")


def run_suite(url: str, out_dir: Path, *args: str, timeout: float = 900) -> SuiteRun:
    """Run ``conformance server --url URL ARGS`` and parse its summary block."""
    require_suite()
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(CLI), "server", "--url", url, "-o", str(out_dir), *args],
        cwd=out_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    summary = output[output.find("=== SUMMARY ===") :] if "=== SUMMARY ===" in output else output[-3000:]
    passed: dict[str, tuple[int, int]] = {}
    for match in re.finditer(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", summary, re.MULTILINE):
        passed[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return SuiteRun(done.returncode, output, summary, passed)


def failure_details(out_dir: Path, scenario: str) -> str:
    lines = []
    for checks in out_dir.glob(f"server-{scenario}-*/checks.json"):
        for check in json.loads(checks.read_text()):
            if check.get("status") == "FAILURE":
                lines.append(f"{check.get('id')}: {check.get('errorMessage')} {json.dumps(check.get('details'))[:500]}")
    return "\n".join(lines)
