"""The admin as control plane, driven as a person would: headless Chromium against a live Daphne.

One flow: log in, create a token and read it once, use it from the official MCP client, disable a
tool in the admin and watch the client's list lose it (with ``notifications/tools/list_changed``
arriving on the client's open GET stream), find the call in the call log with its secret
argument redacted, view the dashboard, revoke the token and see the client refused.
Screenshots of each step go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_sse.models import hash_token
from tests.live import IN_CI, LiveDatabase, LiveServer

pytestmark = [pytest.mark.live, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A demo tool no other test relies on: this flow disables it (and enables it again at the end).
TOGGLED_TOOL = "cover_image"
SECRET = "sk-live-4f9c2d7e-do-not-log"


def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    message = f"Chromium not found at {CHROMIUM} (run `make browser` or `apt-get install -y chromium`)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def browser_page(daphne_server: LiveServer, live_db: LiveDatabase, artifacts_dir: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    live_db.create_user("boss", superuser=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            await page.goto(f"{daphne_server.url}/admin/login/?next=/admin/")
            await page.fill("#id_username", "boss")
            await page.fill("#id_password", "pw")
            await page.click("input[type=submit]")
            await page.wait_for_selector("#user-tools")
            yield page
        finally:
            await browser.close()


async def shot(page: Any, artifacts_dir: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts_dir / f"admin-{name}.png"), full_page=True)


async def set_tool_enabled(page: Any, server: LiveServer, name: str, enabled: bool) -> None:
    """Tick or untick the tool's inline "enabled" box in the tool list and press Save."""
    await page.goto(f"{server.url}/admin/mcp_sse/tool/?q={name}")
    row = page.locator("#result_list tbody tr", has=page.locator(f"th a:text-is('{name}')"))
    box = row.locator("input[name$='-enabled']")
    if await box.is_checked() != enabled:
        await box.set_checked(enabled)
        await page.click("input[name=_save]")
        try:
            await page.wait_for_selector("ul.messagelist")
        except Exception:
            # Say what the admin showed instead (a form error, a 400 page...), to diagnose a flake.
            body = (await page.inner_text("body"))[:2000]
            raise AssertionError(f"no confirmation after saving the tool list: {page.url}\n{body}") from None
    await page.goto(f"{server.url}/admin/mcp_sse/tool/?q={name}")
    assert await row.locator("input[name$='-enabled']").is_checked() == enabled


async def test_admin_control_plane_in_a_real_browser(
    browser_page: Any, daphne_server: LiveServer, live_db: LiveDatabase, artifacts_dir: Path
) -> None:
    page = browser_page
    server = daphne_server
    await shot(page, artifacts_dir, "01-index")
    assert await page.locator("a[href='/admin/mcp_sse/dashboard/']").count() >= 1

    # -- a token, shown once ---------------------------------------------------------------
    await page.goto(f"{server.url}/admin/mcp_sse/accesstoken/add/")
    await page.select_option("#id_user", label="boss")
    await page.fill("#id_name", "browser flow")
    await page.click("input[name=_save]")
    plaintext = await page.input_value("#mcp-token-plaintext")
    assert plaintext.startswith("mcp_") and len(plaintext) > 40
    assert page.url.endswith("/created/")  # a GET after the POST's redirect
    await shot(page, artifacts_dir, "02-token-created")
    # Reloading the page re-posts nothing: still one token, and the secret is not shown again.
    await page.reload()
    assert plaintext not in await page.content()
    assert "was shown once and cannot be shown again" in await page.inner_text("ul.messagelist")
    await page.go_back()
    assert plaintext not in await page.content()
    assert live_db.shell(
        "from mcp_sse.models import AccessToken\nprint(AccessToken.objects.filter(name='browser flow').count())\n"
    ).strip() == "1"
    await page.goto(f"{server.url}/admin/mcp_sse/accesstoken/?q=browser+flow")
    await page.locator("#result_list tbody tr th a").first.click()
    await page.wait_for_selector("#accesstoken_form")
    assert plaintext not in await page.content()
    assert plaintext[:12] in await page.content()  # the prefix, to recognise it
    stored = live_db.shell(
        "from mcp_sse.models import AccessToken\n"
        "t = AccessToken.objects.get(name='browser flow')\n"
        "print(t.digest, t.prefix)\n"
    ).split()
    assert stored == [hash_token(plaintext), plaintext[:12]]

    # -- the official client, with the token ----------------------------------------------
    notifications: list[str] = []
    get_stream_open = asyncio.Event()

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            notifications.append(method)

    async def on_response(response: httpx2.Response) -> None:
        # The SDK opens its GET stream after initialization; the server joins the broadcast
        # group before it sends the response headers, so from here on nothing is missed.
        if response.request.method == "GET" and response.status_code == 200:
            get_stream_open.set()

    auth = {"Authorization": f"Bearer {plaintext}"}
    async with (
        httpx2.AsyncClient(
            headers=auth, timeout=httpx2.Timeout(30, read=120), event_hooks={"response": [on_response]}
        ) as http,
        Client(
            streamable_http_client(server.mcp_url, http_client=http),
            mode="legacy",
            message_handler=on_message,
        ) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        assert {TOGGLED_TOOL, "lookup_account", "echo"} <= names
        looked_up = await client.call_tool("lookup_account", {"account": "acme", "api_key": SECRET})
        assert not looked_up.is_error
        assert looked_up.structured_content == {"account": "acme", "status": "active", "plan": "library-plus"}
        await asyncio.wait_for(get_stream_open.wait(), 15)

        # -- disable a tool in the admin: the client is told, and the tool is gone ---------
        try:
            await set_tool_enabled(page, server, TOGGLED_TOOL, False)
            await shot(page, artifacts_dir, "03-tool-disabled")

            async def told() -> bool:
                return "notifications/tools/list_changed" in notifications

            await until(told, 15, "notifications/tools/list_changed on the client's GET stream")
            names_after = {t.name for t in (await client.list_tools()).tools}
            assert TOGGLED_TOOL not in names_after and "echo" in names_after
            # A hidden tool cannot be called either: to the client it does not exist.
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool(TOGGLED_TOOL, {})
        finally:
            await set_tool_enabled(page, server, TOGGLED_TOOL, True)
        assert TOGGLED_TOOL in {t.name for t in (await client.list_tools()).tools}

    # -- the call log: found, secret redacted --------------------------------------------
    log_url = f"{server.url}/admin/mcp_sse/calllog/?tool=lookup_account&q=browser+flow"

    async def logged() -> bool:
        await page.goto(log_url)
        return await page.locator("#result_list tbody tr").count() > 0

    await until(logged, 15, "the lookup_account call in the call log")
    await shot(page, artifacts_dir, "04-call-log")
    await page.locator("#result_list tbody tr th a").first.click()
    await page.wait_for_selector("pre.mcp-json")
    entry = await page.content()
    assert "[redacted]" in entry
    assert SECRET not in entry
    assert "acme" in entry and "library-plus" in entry  # arguments and result, pretty-printed
    assert "browser flow" in entry  # the token that made the call
    await shot(page, artifacts_dir, "05-call-log-entry")

    # -- the dashboard: charts drawn on the server ----------------------------------------
    await page.goto(f"{server.url}/admin/mcp_sse/dashboard/")
    for chart in ("#mcp-chart-calls", "#mcp-chart-errors", "#mcp-chart-latency"):
        assert await page.locator(f"{chart} svg.mcp-chart").count() == 1
    assert int(await page.inner_text("#mcp-total-calls")) >= 1
    assert await page.locator("#mcp-chart-calls svg rect.mcp-ok").count() >= 1
    assert "lookup_account" in await page.inner_text("#mcp-chart-latency")
    await shot(page, artifacts_dir, "06-dashboard")
    await page.goto(f"{server.url}/admin/mcp_sse/dashboard/?hours=1")
    assert await page.locator("#mcp-chart-calls svg.mcp-chart").count() == 1

    # -- revoke: the next request with the token is refused -------------------------------
    await page.goto(f"{server.url}/admin/mcp_sse/accesstoken/?q=browser+flow")
    await page.locator("#result_list tbody tr th a").first.click()
    await page.click("a.mcp-revoke-button")
    await page.wait_for_selector("button.mcp-confirm-revoke")
    assert "This cannot be undone" in await page.inner_text("#content-main")
    await shot(page, artifacts_dir, "07a-revoke-confirmation")
    await page.click("button.mcp-confirm-revoke")
    await page.wait_for_selector("ul.messagelist")
    await shot(page, artifacts_dir, "07-token-revoked")
    # Revoked: read-only, no second revoke.
    assert await page.locator("#id_name").count() == 0 and await page.locator("a.mcp-revoke-button").count() == 0
    async with httpx.AsyncClient(timeout=10) as raw:
        refused_after = await raw.post(
            server.mcp_url,
            headers={
                "accept": "application/json, text/event-stream",
                "content-type": "application/json",
                **auth,
            },
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
        )
    assert refused_after.status_code == 401
    assert 'error="invalid_token"' in refused_after.headers["www-authenticate"]


def test_chromium_is_where_the_tests_expect_it() -> None:
    """Under CI the browser must be there; elsewhere say how to get it."""
    if IN_CI:
        assert os.path.exists(CHROMIUM) or shutil.which("chromium"), "CI must install chromium (make browser)"
    elif not os.path.exists(CHROMIUM):
        pytest.skip("chromium missing: `make browser` installs it")


async def _stream_ends(reader: Any, timeout: float) -> None:
    """Read what is left of a stream; fail if it does not end within ``timeout`` seconds."""

    async def drain() -> None:
        async for _ in reader:
            pass

    try:
        await asyncio.wait_for(drain(), timeout)
    except TimeoutError:
        raise AssertionError(f"the stream of a revoked token was still open after {timeout}s") from None


async def test_admin_revocation_ends_the_tokens_open_streams(
    browser_page: Any, daphne_server: LiveServer, live_db: LiveDatabase, artifacts_dir: Path
) -> None:
    """Revoke, from the token page's button and from the list action, ends every open stream of
    that token (legacy SSE and the Streamable GET stream) at once, and no other token's stream.

    Before the one revocation path (``AccessToken.objects.filter(...).revoke()``), the admin
    revoked with ``QuerySet.update()``: new requests were refused but the streams kept receiving.
    """
    from tests.sse_client import events, next_event
    from tests.test_tokens import open_session

    page, server = browser_page, daphne_server
    live_db.create_user("stream-owner")
    by_button = live_db.create_token("stream-owner", "--name", "revoked by button")
    by_action = live_db.create_token("stream-owner", "--name", "revoked by action")
    kept = live_db.create_token("stream-owner", "--name", "kept open")

    def sse_headers(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}", "accept": "text/event-stream"}

    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=60)) as http:
        session = await open_session(http, server, by_button)
        async with (
            http.stream("GET", f"{server.url}/mcp/sse", headers=sse_headers(by_button)) as legacy_stream,
            http.stream("GET", server.mcp_url, headers={**session, "accept": "text/event-stream"}) as get_stream,
            http.stream("GET", f"{server.url}/mcp/sse", headers=sse_headers(by_action)) as action_stream,
            http.stream("GET", f"{server.url}/mcp/sse", headers=sse_headers(kept)) as kept_stream,
        ):
            assert get_stream.status_code == 200
            legacy, streamable = events(legacy_stream), events(get_stream)
            action, kept_reader = events(action_stream), events(kept_stream)
            for reader in (legacy, action):
                assert (await next_event(reader)).event == "endpoint"
            kept_endpoint = (await next_event(kept_reader)).data

            # -- the button on the token's page ------------------------------------------
            await page.goto(f"{server.url}/admin/mcp_sse/accesstoken/?q=revoked+by+button")
            await page.locator("#result_list tbody tr th a").first.click()
            await page.click("a.mcp-revoke-button")
            await page.click("button.mcp-confirm-revoke")
            await page.wait_for_selector("ul.messagelist")
            await shot(page, artifacts_dir, "08-revoked-by-button")
            await _stream_ends(legacy, 10)
            await _stream_ends(streamable, 10)

            # -- the list action ----------------------------------------------------------
            await page.goto(f"{server.url}/admin/mcp_sse/accesstoken/?q=revoked+by+action")
            await page.locator("#result_list tbody tr input.action-select").first.check()
            await page.select_option("select[name=action]", "revoke")
            await page.click("button[name=index]")
            await page.wait_for_selector("button.mcp-confirm-revoke")  # asks first
            assert "revoked by action" in await page.inner_text("ul.mcp-revoke-list")
            await page.click("button.mcp-confirm-revoke")
            await page.wait_for_selector("ul.messagelist")
            await shot(page, artifacts_dir, "09-revoked-by-action")
            await _stream_ends(action, 10)

            # The other token's stream still carries replies.
            ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
            posted = await http.post(
                server.url + kept_endpoint, json=ping, headers={"authorization": f"Bearer {kept}"}
            )
            assert posted.status_code == 202
            assert (await next_event(kept_reader)).json()["id"] == 7


async def test_lists_fit_1280_pixels_and_the_dashboard_stays_readable(
    browser_page: Any, daphne_server: LiveServer, live_db: LiveDatabase, artifacts_dir: Path
) -> None:
    """At 1280 px the tool, token and call-log lists show every column without a horizontal
    scrollbar (on d423223 each hid columns behind one); a tool failing all its calls next to a
    busy one is a full bar in "errors per tool", and names clients invented are one row."""
    page, server = browser_page, daphne_server
    live_db.create_user("wide", superuser=False)
    live_db.create_token("wide", "--name", "a token with a rather long descriptive name for the list")
    live_db.shell(
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from mcp_sse.models import CallLog\n"
        "now = timezone.now() - timedelta(minutes=3)\n"
        "rows = [CallLog(tool='echo', when=now, duration_ms=2.0, client_name='n8n-mcp-client-tool', "
        "client_version='1.2.3', transport='streamable-http', protocol_version='2025-11-25') for _ in range(3000)]\n"
        "rows += [CallLog(tool='add', when=now, duration_ms=9.0, outcome='tool_error', error='boom') for _ in range(22)]\n"
        "rows += [CallLog(tool=name, when=now, outcome='denied') for name in ('None', 'get_weather')]\n"
        "CallLog.objects.bulk_create(rows)\n"
    )
    for name, url in (
        ("tools", "/admin/mcp_sse/tool/"),
        ("tokens", "/admin/mcp_sse/accesstoken/"),
        ("call-log", "/admin/mcp_sse/calllog/"),
    ):
        await page.goto(server.url + url)
        overflow = await page.evaluate(
            """() => {
                const box = document.querySelector('#changelist .results') || document.querySelector('#result_list');
                return {box: [box.scrollWidth, box.clientWidth], page: [document.documentElement.scrollWidth,
                        document.documentElement.clientWidth]};
            }"""
        )
        await shot(page, artifacts_dir, f"10-{name}-at-1280")
        overflow["columns"] = await page.evaluate(
            "() => [...document.querySelectorAll('#result_list thead th')].map(th => [th.innerText, th.offsetWidth])"
        )
        assert overflow["box"][0] <= overflow["box"][1], f"{name}: the list scrolls sideways: {overflow}"
        assert overflow["page"][0] <= overflow["page"][1], f"{name}: the page scrolls sideways: {overflow}"

    await page.goto(f"{server.url}/admin/mcp_sse/dashboard/")
    await shot(page, artifacts_dir, "11-dashboard-one-tool-dominates")
    bars = await page.locator("#mcp-chart-errors g > title").all_text_contents()
    assert bars[0] == "add error rate: 22 of 22 (100.0%)"  # most errors first, not most calls
    add_bar = page.locator("#mcp-chart-errors g", has=page.locator("title", has_text="add error rate")).locator("rect")
    box = await add_bar.bounding_box()
    chart = await page.locator("#mcp-chart-errors svg").bounding_box()
    assert box is not None and chart is not None and box["width"] > chart["width"] * 0.5  # 22 of 22: a long bar
    assert "unknown tool (2 names)" in await page.inner_text("table.mcp-table")
