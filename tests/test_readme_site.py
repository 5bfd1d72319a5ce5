"""The README works as printed: a brand-new ``django-admin startproject`` site built from the
README's own code blocks (read from README.md now, never copied here), checked, migrated,
served by Daphne and called over MCP, and the README's test example run in it with pytest.

The blocks used are the fenced blocks right after a ``<!-- readme-test: NAME -->`` comment
(invisible on GitHub). Nothing is installed: the site runs on this project's virtualenv, where
mcp_sse is installed in editable mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import ROOT, LiveServer, free_port, wait_for_port

README = ROOT / "README.md"
BLOCK = re.compile(r"^<!-- readme-test: (?P<name>[^>]+?) -->\n```(?P<info>[^\n]*)\n(?P<code>.*?)^```$", re.M | re.S)
# Every marked block, and where the site gets it from.
EXPECTED = {"install", "settings.py", "asgi.py", "commands", "mcp_tools.py", "pytest.ini", "test_mcp.py", "several workers", "nginx"}


def readme_blocks() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for match in BLOCK.finditer(README.read_text()):
        found.setdefault(match["name"], []).append(match["code"])
    return found


def block(name: str) -> str:
    blocks = readme_blocks().get(name)
    assert blocks, f"README.md has no block marked <!-- readme-test: {name} -->"
    return "\n\n".join(blocks)


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


# -- what the README says to install exists ----------------------------------------------------
def test_the_readme_marks_the_blocks_this_test_builds_from() -> None:
    assert set(readme_blocks()) == EXPECTED


def test_install_commands_name_this_distribution_and_its_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    commands = [shlex.split(line, comments=True) for line in block("install").splitlines()]
    assert ["pip", "install", project["name"]] in commands
    named = re.findall(r"pip install \"?([\w-]+)\[([\w,-]+)\]", README.read_text())
    assert {name for name, _ in named} == {project["name"]}
    for _, wanted in named:
        for extra in wanted.split(","):
            assert extra in extras, f"README names the extra [{extra}], pyproject.toml has none"
    # Every server the README names can be installed with the package.
    assert any(dep.startswith("uvicorn") for dep in extras["uvicorn"])
    assert f'pip install "{project["name"]}[uvicorn]"' in block("install")
    # The several-workers settings need channels_redis and redis-py: that section says how.
    workers = section("Deployment with several workers")
    assert "channels_redis" in workers and f'pip install "{project["name"]}[redis]"' in workers
    assert {dep.split(">")[0] for dep in extras["redis"]} >= {"channels-redis", "redis"}


# -- a new site built from the README ----------------------------------------------------------
@dataclass
class Site:
    path: Path
    env: dict[str, str]
    server: LiveServer
    check_output: str

    def manage(self, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self, [sys.executable, "manage.py", *args], expect_ok=expect_ok)


def run(site: Site | tuple[Path, dict[str, str]], argv: list[str], *, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    cwd, env = (site.path, site.env) if isinstance(site, Site) else site
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    if expect_ok:
        assert done.returncode == 0, f"{shlex.join(argv[1:])} failed:\n{done.stdout}\n{done.stderr}"
    return done


def site_environment() -> dict[str, str]:
    """This process's environment minus what points at this project (its settings, databases,
    pytest options): the site must stand on its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "MCP_LOG_LEVEL"):
        env.pop(name, None)
    return env


def serve(cwd: Path, env: dict[str, str], command: Callable[[int], list[str]], log_path: Path) -> LiveServer:
    """Start ``command(port)`` on a free port and wait until it listens."""
    port = free_port()
    argv = command(port)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_for_port(port, process)
    except Exception as exc:
        server.stop()
        raise AssertionError(f"{shlex.join(argv[1:])} did not serve:\n{server.log()}") from exc
    return server


@pytest.fixture(scope="module")
def readme_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, LiveServer]]:
    path = tmp_path_factory.mktemp("readme") / "site"
    path.mkdir()
    env = site_environment()
    run((path.parent, env), [sys.executable, "-m", "django", "startproject", "mysite", str(path)])
    # The existing site: startproject's project and one app of its own, for the tools.
    run((path, env), [sys.executable, "manage.py", "startapp", "library"])
    settings = path / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nINSTALLED_APPS = [*INSTALLED_APPS, "library"]  # the existing site\'s own app\n\n'
        + block("settings.py")
        + "\n"
    )
    (path / "mysite" / "asgi.py").write_text(block("asgi.py") + "\n")
    (path / "library" / "mcp_tools.py").write_text(block("mcp_tools.py") + "\n")
    (path / "pytest.ini").write_text(block("pytest.ini") + "\n")
    (path / "test_mcp.py").write_text(block("test_mcp.py") + "\n")
    (path / "mysite" / "settings_workers.py").write_text(
        "from .settings import *  # noqa: F403\n\n" + block("several workers") + "\n"
    )

    server: LiveServer | None = None
    check_output = ""
    log_path = path.parent / "server.log"
    try:
        for line in block("commands").splitlines():
            argv = shlex.split(line, comments=True)
            if not argv:
                continue
            assert argv[0] == "python", f"not a python command: {line}"
            argv[0] = sys.executable
            if "mcp_sse.daphne_server" in argv:
                server = serve(path, env, lambda port, argv=argv: [*argv, "-b", "127.0.0.1", "-p", str(port)], log_path)
            else:
                done = run((path, env), argv)
                if argv[2:3] == ["check"]:
                    check_output = done.stdout + done.stderr
        assert server is not None, "the README's commands start no server"
        yield Site(path, env, server, check_output), server
    finally:
        if server is not None:
            server.stop()


@pytest.mark.live
def test_the_readme_site_checks_clean(readme_site: tuple[Site, LiveServer]) -> None:
    site, _ = readme_site
    assert "System check identified no issues" in site.check_output, site.check_output


@pytest.mark.live
def test_check_deploy_warns_about_process_local_layers_and_caches(readme_site: tuple[Site, LiveServer]) -> None:
    """As the README says, even with startproject's DEBUG = True; the several-workers settings
    quiet both warnings."""
    site, _ = readme_site
    single = site.manage("check", "--deploy")
    assert "mcp_sse.W002" in single.stderr and "mcp_sse.W009" in single.stderr, single.stderr
    workers = site.manage("check", "--deploy", "--settings", "mysite.settings_workers")
    assert "mcp_sse.W002" not in workers.stderr and "mcp_sse.W009" not in workers.stderr, workers.stderr
    assert "mcp_sse.E" not in workers.stderr, workers.stderr


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int | None = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        message["id"] = request_id
    return message


def reply(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads([d for d in data if d][-1])
    else:
        message = response.json()
    assert "result" in message, message
    return dict(message["result"])


@pytest.mark.live
async def test_a_token_from_the_command_line_calls_the_readme_tools_over_mcp(
    readme_site: tuple[Site, LiveServer],
) -> None:
    site, server = readme_site
    site.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
    # The command as a user types it, global option after the subcommand.
    token = site.manage("mcp_token", "create", "admin", "--settings", "mysite.settings").stdout.strip()
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
        hello = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "readme", "version": "1"}})
        refused = await http.post("/mcp", json=hello, headers={"authorization": "Bearer mcp_not_a_token"})
        assert refused.status_code == 401
        response = await http.post("/mcp", json=hello)
        assert reply(response)["serverInfo"]["name"] == "My site"
        http.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        http.headers["mcp-protocol-version"] = "2025-11-25"
        assert (await http.post("/mcp", json=rpc("notifications/initialized", request_id=None))).status_code == 202

        tools = {tool["name"] for tool in reply(await http.post("/mcp", json=rpc("tools/list")))["tools"]}
        assert {"echo", "library_report"} <= tools
        echoed = reply(await http.post("/mcp", json=rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}})))
        assert echoed["content"] == [{"type": "text", "text": "hi"}]
        report = reply(
            await http.post("/mcp", json=rpc("tools/call", {"name": "library_report", "arguments": {"sections": 2}}))
        )
        assert report["content"][0]["text"] == "done"

        hours = reply(await http.post("/mcp", json=rpc("resources/read", {"uri": "library://opening-hours"})))
        assert hours["contents"][0]["mimeType"] == "text/plain" and hours["contents"][0]["text"]
        shelf = reply(await http.post("/mcp", json=rpc("resources/read", {"uri": "library://shelves/7"})))
        assert shelf["contents"][0]["mimeType"] == "application/json"
        assert json.loads(shelf["contents"][0]["text"])["shelf"] == "7"
        prompt = reply(await http.post("/mcp", json=rpc("prompts/get", {"name": "recommend", "arguments": {"genre": "history"}})))
        assert prompt["messages"][0]["role"] == "user" and "history" in prompt["messages"][0]["content"]["text"]


@pytest.mark.live
def test_the_readme_test_example_passes_in_the_site(readme_site: tuple[Site, LiveServer]) -> None:
    site, _ = readme_site
    done = run(site, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mcp.py"], expect_ok=False)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.live
async def test_the_readme_uvicorn_command_serves_the_site(readme_site: tuple[Site, LiveServer]) -> None:
    """The other server the README names (uvicorn is in this virtualenv through the dev extra)."""
    site, _ = readme_site
    found = re.search(r"or: (uvicorn \S+)", block("commands"))
    assert found, "the README's commands name no uvicorn command"
    argv = [sys.executable, "-m", *shlex.split(found[1]), "--host", "127.0.0.1", "--port"]
    log_path = site.path.parent / "uvicorn.log"
    server = await asyncio.to_thread(serve, site.path, site.env, lambda port: [*argv, str(port)], log_path)
    try:
        headers = {"accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
            hello = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "readme", "version": "1"}})
            response = await http.post("/mcp", json=hello)
            assert reply(response)["serverInfo"]["name"] == "My site", server.log()
            http.headers["mcp-session-id"] = response.headers["mcp-session-id"]
            echoed = reply(await http.post("/mcp", json=rpc("tools/call", {"name": "echo", "arguments": {"text": "uv"}})))
            assert echoed["content"] == [{"type": "text", "text": "uv"}]
    finally:
        server.stop()
