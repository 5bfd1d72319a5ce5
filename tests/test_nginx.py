"""The README's nginx configuration, served by a real nginx in front of two Daphne workers that
share Redis: Streamable and legacy SSE sessions go through it (the POSTs spread over both
workers), stream events arrive unbuffered, the health probe answers, and without its
``proxy_set_header Host $host`` every request would be refused (421).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import IN_CI, LiveServer, free_port, wait_for_port
from tests.sse_client import events, next_event
from tests.test_readme_site import block

pytestmark = [pytest.mark.live, pytest.mark.redis]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def nginx_config(readme_block: str, workers: list[LiveServer], port: int, prefix: Path) -> str:
    """The README's block with our ports, inside the few lines an nginx of our own needs."""
    servers = re.findall(r"server 127\.0\.0\.1:\d+;", readme_block)
    assert len(servers) == 2, "the README's upstream lists two workers"
    config = readme_block
    for line, worker in zip(servers, workers, strict=True):
        config = config.replace(line, f"server 127.0.0.1:{worker.port};", 1)
    assert "listen 80;" in config
    config = config.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""
    return (
        f"{user} daemon off; worker_processes 1; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{ log_format upstreams '$request $upstream_addr'; access_log {prefix / 'access.log'} upstreams;\n"
        f"{temp}\n{config}\n}}\n"
    )


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    if NGINX is None:
        if IN_CI:
            pytest.fail("nginx is required under CI (make nginx installs Debian's package)")
        pytest.skip("nginx is not installed (make nginx installs it where apt-get can)")
    started: list[subprocess.Popen[bytes]] = []

    def start(config: str) -> int:
        prefix = tmp_path / f"nginx-{len(started)}"
        prefix.mkdir()
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(config.replace("__PORT__", str(port)).replace("__PREFIX__", str(prefix)))
        with open(prefix / "stdout.log", "wb") as log:
            process = subprocess.Popen(
                [NGINX, "-p", str(prefix), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        started.append(process)
        try:
            wait_for_port(port, process)
        except Exception:
            raise RuntimeError(
                f"nginx did not start:\n{(prefix / 'stdout.log').read_text()}\n{(prefix / 'error.log').read_text()}"
            ) from None
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


@pytest.fixture
def workers(redis_url: str, server_factory: Callable[..., LiveServer]) -> list[LiveServer]:
    prefix = uuid.uuid4().hex[:8]
    return [server_factory(redis_url=redis_url, redis_prefix=prefix) for _ in range(2)]


def served(readme: str, workers: list[LiveServer], start: Callable[[str], int]) -> str:
    placeholder = Path("__PREFIX__")
    config = nginx_config(readme, workers, 0, placeholder).replace("listen 127.0.0.1:0;", "listen 127.0.0.1:__PORT__;")
    return f"http://localhost:{start(config)}"


HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def echo(request_id: int, text: str) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }


async def test_sessions_on_both_transports_through_the_readme_nginx(
    workers: list[LiveServer], nginx_factory: Callable[[str], int], tmp_path: Path
) -> None:
    base = served(block("nginx"), workers, nginx_factory)
    async with httpx.AsyncClient(timeout=15) as http:
        ready = await http.get(f"{base}/mcp/health/ready")
        assert ready.status_code == 200, ready.text

        # Streamable HTTP (2025-11-25): a session, then calls spread over both workers.
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "nginx", "version": "1"},
            },
        }
        reply = await http.post(f"{base}/mcp", headers=HEADERS, json=init)
        assert reply.status_code == 200, reply.text
        session = {**HEADERS, "mcp-session-id": reply.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post(f"{base}/mcp", headers=session, json=note)).status_code == 202
        for n in range(1, 5):
            call = await http.post(f"{base}/mcp", headers=session, json=echo(n, f"streamable-{n}"))
            assert call.status_code == 200 and f"streamable-{n}" in call.text

        # Legacy HTTP+SSE: the endpoint event arrives at once (unbuffered), replies on the stream.
        async with http.stream("GET", f"{base}/mcp/sse", headers={"accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            reader = events(stream)
            post_url = base + (await next_event(reader, timeout=5)).data
            legacy_init = {**init, "params": {**init["params"], "protocolVersion": "2024-11-05"}}  # type: ignore[dict-item]
            assert (await http.post(post_url, json=legacy_init)).status_code == 202
            assert (await next_event(reader, timeout=5)).json()["result"]["protocolVersion"] == "2024-11-05"
            assert (await http.post(post_url, json=note)).status_code == 202
            for n in range(10, 14):
                assert (await http.post(post_url, json=echo(n, f"legacy-{n}"))).status_code == 202
                assert (await next_event(reader, timeout=5)).json()["result"]["content"][0]["text"] == f"legacy-{n}"

    # Round robin: the POSTs of both sessions went to both workers.
    access = (tmp_path / "nginx-0" / "access.log").read_text()
    posts = [line for line in access.splitlines() if line.startswith("POST /mcp")]
    assert len(posts) == 12  # 6 per session
    for worker in workers:
        assert any(line.endswith(f"127.0.0.1:{worker.port}") for line in posts), access


async def test_without_the_host_line_every_request_is_refused(
    workers: list[LiveServer], nginx_factory: Callable[[str], int], tmp_path: Path
) -> None:
    """The README's comment is true: nginx sends the upstream's name as Host without it."""
    readme = block("nginx")
    assert "proxy_set_header Host $host;" in readme
    base = served(readme.replace("proxy_set_header Host $host;", ""), workers, nginx_factory)
    async with httpx.AsyncClient(timeout=15) as http:
        reply = await http.post(f"{base}/mcp", headers=HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert reply.status_code == 421
