"""The admin pages in-process (Django test client, test database): figures, CSV, one-time token
page, revocation, and the notifications that admin edits send."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.utils import timezone

from mcp_sse.access import _seconds_until_allowed
from mcp_sse.admin import charts, stats
from mcp_sse.auth.tokens import _cache_key
from mcp_sse.models import AccessToken, CallLog, Tool, hash_token
from mcp_sse.notify import BROADCAST_GROUP
from mcp_sse.sync import sync_tools

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss() -> Any:
    return get_user_model().objects.create_superuser("boss", "boss@example.org", "pw")


@pytest.fixture
def admin_client(boss: Any) -> Client:
    client = Client()
    client.force_login(boss)
    return client


def add_calls(tool: str, durations: list[float], *, errors: int = 0, ago: timedelta = timedelta(minutes=5)) -> None:
    when = timezone.now() - ago
    CallLog.objects.bulk_create(
        [
            CallLog(
                tool=tool,
                duration_ms=d,
                when=when,
                outcome=CallLog.Outcome.TOOL_ERROR if index < errors else CallLog.Outcome.OK,
            )
            for index, d in enumerate(durations)
        ]
    )


# -- figures ------------------------------------------------------------------------------


def test_percentiles_use_the_nearest_rank() -> None:
    add_calls("echo", [float(v) for v in range(1, 101)], errors=7)
    add_calls("add", [30.0, 10.0, 20.0])
    add_calls("echo", [5000.0], ago=timedelta(hours=30))  # outside the window
    figures = stats.tool_stats(stats.since_hours(24))
    echo = figures[("tools/call", "echo")]
    assert (echo.calls, echo.errors, echo.p50_ms, echo.p95_ms, echo.max_ms) == (100, 7, 50.0, 95.0, 100.0)
    assert echo.error_rate == pytest.approx(0.07)
    add = figures[("tools/call", "add")]
    assert (add.p50_ms, add.p95_ms) == (20.0, 30.0)
    only_add = stats.tool_stats(stats.since_hours(24), [("tools/call", "add")])
    assert list(only_add) == [("tools/call", "add")]
    totals = stats.overall(stats.since_hours(24))
    assert totals["calls"] == 103 and totals["errors"] == 7


def test_timeline_fills_empty_buckets() -> None:
    add_calls("echo", [1.0, 2.0], errors=1, ago=timedelta(minutes=90))
    now = timezone.now()
    buckets = stats.timeline(now - timedelta(hours=3), now, "hour")
    assert 3 <= len(buckets) <= 4
    assert sum(b.calls for b in buckets) == 2 and sum(b.errors for b in buckets) == 1


def test_charts_escape_every_label() -> None:
    svg = charts.horizontal_bars(
        [("<script>alert(1)</script>", [1.0, None])],
        [charts.Series("p50", "mcp-p50"), charts.Series("p95", "mcp-p95")],
        label="x & y",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "x &amp; y" in svg
    assert charts.nice_ceiling(0) == 1 and charts.nice_ceiling(7) == 10 and charts.nice_ceiling(130) == 200


def test_retry_after_is_when_one_more_call_fits() -> None:
    # This window full (5 of 5) 10 s in: wait for the rest of it, then until 4/5 of it has faded.
    assert _seconds_until_allowed(5, 0, 5, 10.0) == 62
    # Room in this window, but the last one still weighs: 8 * (1 - f) + 1 + 1 <= 5 once f >= 0.625,
    # i.e. 37.5 s into the window, 7.5 s from now.
    assert _seconds_until_allowed(5, 8, 1, 30.0) == 8
    assert _seconds_until_allowed(5, 0, 0, 59.9) == 1


# -- pages --------------------------------------------------------------------------------


def test_tool_list_shows_figures_in_a_fixed_number_of_queries(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    sync_tools()
    add_calls("echo", [10.0, 20.0, 30.0, 40.0], errors=1)
    with django_assert_max_num_queries(14):
        page = admin_client.get("/admin/mcp_sse/tool/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "25.0%" in text and "40.0 ms" in text  # echo: error rate and p95
    tool = Tool.objects.get(kind="function", name="echo")
    detail = admin_client.get(f"/admin/mcp_sse/tool/{tool.pk}/change/")
    assert detail.status_code == 200 and "25.0%" in detail.content.decode()


def test_dashboard_renders_with_and_without_calls(admin_client: Client) -> None:
    empty = admin_client.get("/admin/mcp_sse/dashboard/")
    assert empty.status_code == 200 and "No calls in this period." in empty.content.decode()
    add_calls("echo", [10.0, 20.0], errors=1)
    for hours in ("1", "24", "168", "bogus"):
        page = admin_client.get(f"/admin/mcp_sse/dashboard/?hours={hours}")
        assert page.status_code == 200
        text = page.content.decode()
        assert text.count('<svg class="mcp-chart"') == 4
        assert "<script" not in text.split('id="content-main"')[1]  # charts need no script
    index = admin_client.get("/admin/mcp_sse/").content.decode()
    assert "/admin/mcp_sse/dashboard/" in index


def _bar_widths(svg: str, css_class: str) -> list[float]:
    import re

    # The legend's swatch comes first (y="4"); the bars follow.
    found = re.findall(rf'<rect class="{css_class}" x="[\d.]+" y="([\d.]+)" width="([\d.]+)"', svg)
    return [float(w) for y, w in found if y != "4"]


def test_dashboard_errors_chart_is_ordered_by_errors_and_readable_beside_a_busy_tool(admin_client: Client) -> None:
    """On d423223 a tool failing 22 of 22 calls next to one with 5,000 calls was a 1-px sliver in
    a chart ordered by calls. Now: most errors first, each bar that tool's error rate."""
    sync_tools()
    add_calls("echo", [1.0] * 5000, errors=3)
    add_calls("add", [1.0] * 22, errors=22)
    page = admin_client.get("/admin/mcp_sse/dashboard/")
    errors_chart = page.context["errors_chart"]
    labels = [line.split("</title>")[1].split("<")[0] for line in errors_chart.split('class="mcp-label"')[1:]]
    assert labels == ["add", "echo"]  # 22 errors before 3, though echo has 227 times the calls
    add_bar, echo_bar = _bar_widths(errors_chart, "mcp-err")
    assert add_bar == 560.0  # 100 %: the whole plot width
    assert echo_bar >= charts.MIN_BAR_WIDTH  # 0.06 %, still a visible bar
    assert "22 of 22 (100.0%)" in errors_chart and "3 of 5000 (0.1%)" in errors_chart
    calls_bars = _bar_widths(page.context["calls_per_tool_chart"], "mcp-ok")
    assert min(calls_bars) >= charts.MIN_BAR_WIDTH


def test_dashboard_groups_names_clients_invented(admin_client: Client) -> None:
    sync_tools()
    add_calls("echo", [1.0, 2.0])
    for invented in ("None", "search_web", "get_weather"):
        CallLog.objects.create(tool=invented, outcome=CallLog.Outcome.DENIED, duration_ms=0.1)
    page = admin_client.get("/admin/mcp_sse/dashboard/")
    labels = [row["label"] for row in page.context["table"]]
    assert labels == ["echo", "unknown tool (3 names)"]
    unknown = page.context["table"][-1]
    assert (unknown["stats"].calls, unknown["stats"].errors) == (3, 3)
    text = page.content.decode()
    for chart in ("calls_per_tool_chart", "errors_chart", "latency_chart"):
        assert "get_weather" not in page.context[chart]
    assert "None" not in labels and 'title="None, get_weather, search_web"' in text
    # Its link lists the calls to those names in the call log.
    listed = admin_client.get(unknown["url"])
    assert listed.status_code == 200 and listed.content.decode().count('class="mcp-badge mcp-outcome-denied"') == 3


def test_tool_list_marks_only_stale_tools(admin_client: Client) -> None:
    sync_tools()
    Tool.objects.create(kind="function", name="gone_from_code", stale=True)
    text = admin_client.get("/admin/mcp_sse/tool/").content.decode()
    assert text.count('class="mcp-badge mcp-stale"') == 1  # only the stale row is marked
    assert "icon-no.svg" not in text  # no red cross for each healthy tool


def test_override_fields_show_what_the_code_declares(admin_client: Client) -> None:
    from mcp_sse.registry.base import default_registry

    sync_tools()
    declared = default_registry.tools["echo"]
    tool = Tool.objects.get(kind="function", name="echo")
    form = admin_client.get(f"/admin/mcp_sse/tool/{tool.pk}/change/").context["adminform"].form
    assert form.fields["description_override"].widget.attrs["placeholder"] == declared.description
    assert form.fields["title_override"].widget.attrs["placeholder"] == (declared.title or "(none declared in code)")


def test_dashboard_needs_the_call_log_view_permission() -> None:
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/mcp_sse/dashboard/").status_code in (403, 404)


def test_call_log_is_read_only_and_exports_csv(admin_client: Client) -> None:
    CallLog.objects.create(tool="echo", arguments={"text": "=HYPERLINK(1)", "api_key": "[redacted]"}, result={"a": 1})
    entry = CallLog.objects.get()
    view = admin_client.get(f"/admin/mcp_sse/calllog/{entry.pk}/change/")
    assert view.status_code == 200
    assert '<pre class="mcp-json">' in view.content.decode()
    assert admin_client.get("/admin/mcp_sse/calllog/add/").status_code == 403
    response = admin_client.post(
        "/admin/mcp_sse/calllog/", {"action": "export_csv", "_selected_action": [str(entry.pk)]}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["when", "method", "tool"] and len(rows) == 2
    arguments = rows[1][rows[0].index("arguments")]
    assert "[redacted]" in arguments and "=HYPERLINK" in arguments  # JSON text, starts with "{"
    filtered = admin_client.get("/admin/mcp_sse/calllog/?tool=echo&outcome__exact=ok&q=echo")
    assert filtered.status_code == 200


def test_token_plaintext_is_shown_once_and_never_stored(admin_client: Client, boss: Any) -> None:
    response = admin_client.post(
        "/admin/mcp_sse/accesstoken/add/", {"user": str(boss.pk), "name": "from the admin", "rate_limit": "10"}
    )
    token = AccessToken.objects.get(name="from the admin")
    created_url = f"/admin/mcp_sse/accesstoken/{token.pk}/created/"
    # POST/redirect/GET: the form's POST answers with a redirect, never with the secret itself.
    assert response.status_code == 302 and response["Location"] == created_url
    session_half = next(v for k, v in admin_client.session.items() if k.startswith("mcp_sse_once_"))
    cookie_half = admin_client.cookies[f"mcp_sse_once_{token.pk}"]
    assert cookie_half["path"] == created_url and cookie_half["httponly"] and cookie_half["samesite"] == "Strict"
    shown = admin_client.get(created_url)
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    plaintext = shown.context["plaintext"]
    assert plaintext.startswith("mcp_") and plaintext in shown.content.decode()
    assert token.digest == hash_token(plaintext) and token.rate_limit == 10
    # Neither half alone is the token, nor contains it.
    assert plaintext not in session_half and plaintext not in cookie_half.value
    # A reload shows nothing and creates nothing: one token, and the page says it was shown once.
    again = admin_client.get(created_url, follow=True)
    assert plaintext not in again.content.decode()
    assert "was shown once and cannot be shown again" in again.content.decode()
    assert AccessToken.objects.filter(name="from the admin").count() == 1
    assert not any(k.startswith("mcp_sse_once_") for k in admin_client.session.keys())
    for url in (f"/admin/mcp_sse/accesstoken/{token.pk}/change/", "/admin/mcp_sse/accesstoken/"):
        assert plaintext not in admin_client.get(url).content.decode()
    stored = [str(v) for v in AccessToken.objects.values_list(*[f.attname for f in AccessToken._meta.concrete_fields])]
    assert not any(plaintext in value for value in stored)


def test_created_page_without_its_cookie_half_shows_nothing(admin_client: Client, boss: Any) -> None:
    """Another browser with the same session (or a stolen session row) cannot read the token."""
    admin_client.post("/admin/mcp_sse/accesstoken/add/", {"user": str(boss.pk), "name": "no cookie"})
    token = AccessToken.objects.get(name="no cookie")
    del admin_client.cookies[f"mcp_sse_once_{token.pk}"]
    shown = admin_client.get(f"/admin/mcp_sse/accesstoken/{token.pk}/created/")
    assert shown.status_code == 302 and "plaintext" not in (shown.context or {})


def test_revoke_asks_first_and_a_revoked_token_is_read_only(admin_client: Client, boss: Any) -> None:
    token, _ = AccessToken.objects.create_token(boss, name="ask me")
    url = f"/admin/mcp_sse/accesstoken/{token.pk}/revoke/"
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "This cannot be undone" in confirm.content.decode()
    assert AccessToken.objects.get(pk=token.pk).revoked is None  # asking revokes nothing
    # The list action asks too, listing what it would revoke.
    listed = admin_client.post("/admin/mcp_sse/accesstoken/", {"action": "revoke", "_selected_action": [str(token.pk)]})
    assert listed.status_code == 200 and "ask me" in listed.content.decode()
    assert 'name="confirmed" value="yes"' in listed.content.decode()
    assert AccessToken.objects.get(pk=token.pk).revoked is None
    assert admin_client.post(url).status_code == 302
    revoked = AccessToken.objects.get(pk=token.pk)
    assert revoked.revoked is not None
    # Read-only afterwards: no form fields, no revoke button, and a POST changes nothing.
    page = admin_client.get(f"/admin/mcp_sse/accesstoken/{token.pk}/change/").content.decode()
    assert 'name="name"' not in page and "mcp-revoke-button" not in page and 'name="_save"' not in page
    posted = admin_client.post(
        f"/admin/mcp_sse/accesstoken/{token.pk}/change/", {"user": str(boss.pk), "name": "renamed", "rate_limit": "5"}
    )
    assert posted.status_code == 403
    assert AccessToken.objects.get(pk=token.pk).name == "ask me"
    again = admin_client.get(url, follow=True).content.decode()
    assert "was already revoked" in again


def test_revoke_button_and_action_clear_the_token_cache(admin_client: Client, boss: Any) -> None:
    first, _ = AccessToken.objects.create_token(boss, name="one")
    second, _ = AccessToken.objects.create_token(boss, name="two")
    cache = caches["default"]
    for token in (first, second):
        cache.set(_cache_key(token.digest), {"token_id": token.pk}, 300)
    assert admin_client.get(f"/admin/mcp_sse/accesstoken/{first.pk}/revoke/").status_code == 200  # asks first
    done = admin_client.post(f"/admin/mcp_sse/accesstoken/{first.pk}/revoke/")
    assert done.status_code == 302
    assert cache.get(_cache_key(first.digest)) is None
    admin_client.post(
        "/admin/mcp_sse/accesstoken/",
        {"action": "revoke", "_selected_action": [str(second.pk)], "confirmed": "yes"},
    )
    assert cache.get(_cache_key(second.digest)) is None
    assert AccessToken.objects.filter(revoked__isnull=True).count() == 0
    revoked = admin_client.get("/admin/mcp_sse/accesstoken/?state=revoked").content.decode()
    assert "one" in revoked and "two" in revoked


# -- notifications ------------------------------------------------------------------------


async def _broadcasts(layer: Any, channel: str, wait: float) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), wait))
        except TimeoutError:
            return received


@contextlib.contextmanager
def broadcasts_heard() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Listens on the broadcast group; the yielded function returns what arrived (it waits
    until 0.5 s pass without a message)."""
    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(BROADCAST_GROUP, channel)
    try:
        yield lambda: async_to_sync(_broadcasts)(layer, channel, 0.5)
    finally:
        async_to_sync(layer.group_discard)(BROADCAST_GROUP, channel)


@pytest.mark.django_db(transaction=True)
def test_bulk_disable_sends_one_list_changed_after_commit(admin_client: Client) -> None:
    sync_tools()
    with broadcasts_heard() as heard:
        ids = [str(pk) for pk in Tool.objects.filter(kind="function").values_list("pk", flat=True)[:3]]
        admin_client.post("/admin/mcp_sse/tool/", {"action": "disable", "_selected_action": ids})
        assert Tool.objects.filter(enabled=False).count() == 3
        assert heard() == [{"type": "mcp.list_changed", "kind": "tools"}]


def _untick(tools: list[Tool]) -> dict[str, str]:
    """The tool list's POST that unticks "enabled" for ``tools`` (the inline-edit formset)."""
    data = {"form-TOTAL_FORMS": str(len(tools)), "form-INITIAL_FORMS": str(len(tools)), "_save": "Save"}
    for index, tool in enumerate(tools):
        data[f"form-{index}-id"] = str(tool.pk)  # an unticked checkbox is not sent at all
    return data


@pytest.mark.django_db(transaction=True)
def test_inline_save_sends_one_list_changed_after_commit(admin_client: Client) -> None:
    sync_tools()
    with broadcasts_heard() as heard:
        tools = list(Tool.objects.filter(kind="function")[:2])
        saved = admin_client.post("/admin/mcp_sse/tool/", _untick(tools))
        assert saved.status_code == 302
        assert Tool.objects.filter(enabled=False).count() == 2
        assert heard() == [{"type": "mcp.list_changed", "kind": "tools"}]


class ReadsBeforeWrite:
    """Collects the SELECTs that a transaction opened while it is installed runs before its first
    write. On SQLite such a transaction fails at once with "database is locked" when another
    connection (the call log's writer thread, say) starts writing between the read and the write:
    the admin's saves gave 500 pages that way."""

    def __init__(self, baseline: int) -> None:
        self.reads: list[str] = []
        self._baseline = baseline  # the test's own transaction, if any
        self._block: object | None = None
        self._wrote = False

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        blocks = context["connection"].atomic_blocks
        if len(blocks) > self._baseline:
            if blocks[self._baseline] is not self._block:  # a new transaction (or savepoint)
                self._block, self._wrote = blocks[self._baseline], False
            verb = sql.lstrip().split(None, 1)[0].upper()
            if verb in ("INSERT", "UPDATE", "DELETE"):
                self._wrote = True
            elif verb == "SELECT" and not self._wrote:
                self.reads.append(sql)
        else:
            self._block = None
        return execute(sql, params, many, context)


@contextlib.contextmanager
def reads_before_write() -> Iterator[list[str]]:
    recorder = ReadsBeforeWrite(len(connection.atomic_blocks))
    with connection.execute_wrapper(recorder):
        yield recorder.reads


def test_admin_saves_do_not_read_before_writing_in_a_transaction(admin_client: Client, boss: Any) -> None:
    sync_tools()
    tool = Tool.objects.filter(kind="function").first()
    assert tool is not None
    with reads_before_write() as inline:
        assert admin_client.post(f"/admin/mcp_sse/tool/?q={tool.name}", _untick([tool])).status_code == 302
    assert not Tool.objects.get(pk=tool.pk).enabled
    with reads_before_write() as action:
        selected = {"action": "enable", "_selected_action": [str(tool.pk)]}
        assert admin_client.post("/admin/mcp_sse/tool/", selected).status_code == 302
    assert Tool.objects.get(pk=tool.pk).enabled
    token, _ = AccessToken.objects.create_token(boss, name="revoked here")
    with reads_before_write() as revoke:
        assert admin_client.post(f"/admin/mcp_sse/accesstoken/{token.pk}/revoke/").status_code == 302
    assert AccessToken.objects.get(pk=token.pk).revoked is not None
    assert (inline, action, revoke) == ([], [], [])


def test_user_changes_drop_their_tokens_from_the_cache(boss: Any) -> None:
    from django.contrib.auth.models import Group

    token, _ = AccessToken.objects.create_token(boss, name="cached")
    cache = caches["default"]
    key = _cache_key(token.digest)
    cache.set(key, {"token_id": token.pk}, 300)
    boss.is_active = False
    boss.save()
    assert cache.get(key) is None  # a deactivated user's tokens stop working at once
    cache.set(key, {"token_id": token.pk}, 300)
    Group.objects.create(name="readers").user_set.add(boss)  # groups are cached with the token
    assert cache.get(key) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["button", "action", "command", "code"])
def test_every_revocation_path_ends_the_tokens_streams(admin_client: Client, boss: Any, path: str) -> None:
    """Admin button, admin list action, ``mcp_token revoke`` and code share one path: each
    forgets the cached token and broadcasts ``mcp.token_revoked`` (which ends its open streams)."""
    from django.core.management import call_command

    from mcp_sse.notify import TOKEN_REVOKED

    token, plaintext = AccessToken.objects.create_token(boss, name=f"by {path}")
    caches["default"].set(_cache_key(hash_token(plaintext)), {"user_id": boss.pk}, 60)
    with broadcasts_heard() as heard:
        if path == "button":
            assert admin_client.post(f"/admin/mcp_sse/accesstoken/{token.pk}/revoke/").status_code == 302
        elif path == "action":
            admin_client.post(
                "/admin/mcp_sse/accesstoken/",
                {"action": "revoke", "_selected_action": [str(token.pk)], "confirmed": "yes"},
            )
        elif path == "command":
            call_command("mcp_token", "revoke", str(token.pk), stdout=io.StringIO())
        else:
            assert token.revoke() is True
            assert token.revoked is not None
        assert heard() == [{"type": TOKEN_REVOKED, "token_id": token.pk}]
    assert caches["default"].get(_cache_key(hash_token(plaintext))) is None
    assert AccessToken.objects.get(pk=token.pk).state == "revoked"
    # Revoking again changes nothing and tells no one.
    with broadcasts_heard() as heard:
        assert AccessToken.objects.filter(pk=token.pk).revoke() == 0
        assert heard() == []
