"""Access tokens end to end: stored as digests, refused when expired or revoked, rate-limited
across worker processes. Everything goes through real Daphne processes over real sockets."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest

from mcp_sse.models import hash_token
from tests.live import LiveDatabase, LiveServer

pytestmark = pytest.mark.live

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
VERSION = "2025-11-25"


def initialize_body() -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "tokens", "version": "1"}},
    }


def bearer(token: str) -> dict[str, str]:
    return {**HEADERS, "authorization": f"Bearer {token}"}


async def open_session(http: httpx.AsyncClient, server: LiveServer, token: str) -> dict[str, str]:
    """Initialize a session with ``token``; returns the headers for its next requests."""
    response = await http.post(server.mcp_url, headers=bearer(token), json=initialize_body())
    assert response.status_code == 200, response.text
    headers = {**bearer(token), "mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": VERSION}
    done = await http.post(
        server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert done.status_code == 202
    return headers


def call_echo(request_id: int, text: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }


def make_token(live_db: LiveDatabase, username: str, code: str = "") -> tuple[int, str]:
    """Create a token for ``username`` in the live database; ``code`` may change ``t`` before saving."""
    out = live_db.shell(
        "from datetime import timedelta\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from mcp_sse.models import AccessToken\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        "t, plaintext = AccessToken.objects.create_token(u, name='test token')\n"
        f"{code}\n"
        "t.save()\n"
        "print(t.pk, plaintext)\n"
    )
    pk, plaintext = out.strip().splitlines()[-1].split()
    return int(pk), plaintext


async def admin_login(http: httpx.AsyncClient, server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("tokenboss", superuser=True)
    page = await http.get(f"{server.url}/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None
    done = await http.post(
        f"{server.url}/admin/login/?next=/admin/",
        data={"username": "tokenboss", "password": "pw", "csrfmiddlewaretoken": csrf.group(1), "next": "/admin/"},
    )
    assert done.status_code == 302, done.text


async def admin_revoke(http: httpx.AsyncClient, server: LiveServer, token_id: int) -> None:
    """Run the token list's "Revoke selected tokens" action, as the admin user would."""
    listing = await http.get(f"{server.url}/admin/mcp_sse/accesstoken/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', listing.text)
    assert csrf is not None
    done = await http.post(
        f"{server.url}/admin/mcp_sse/accesstoken/",
        data={
            "action": "revoke",
            "_selected_action": str(token_id),
            "confirmed": "yes",  # the answer on the confirmation page the action shows first
            "index": "0",
            "csrfmiddlewaretoken": csrf.group(1),
        },
    )
    assert done.status_code == 302, done.text


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert reason in challenge


def test_only_the_digest_is_stored(live_db: LiveDatabase) -> None:
    live_db.create_user("digest-user")
    plaintext = live_db.create_token("digest-user", "--name", "digest check")
    rows = json.loads(
        live_db.shell(
            "import json\n"
            "from mcp_sse.models import AccessToken\n"
            "print(json.dumps(list(AccessToken.objects.filter(name='digest check').values()), default=str))\n"
        )
    )
    assert len(rows) == 1
    assert rows[0]["digest"] == hash_token(plaintext)
    assert rows[0]["prefix"] == plaintext[:12]
    assert plaintext not in json.dumps(rows)


async def test_unknown_token_is_401(daphne_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            daphne_server.mcp_url, headers=bearer("mcp_not-a-real-token"), json=initialize_body()
        )
    assert_refused(response, "not valid")


async def test_expired_token_is_401(daphne_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("expiring-user")
    _, expired = make_token(live_db, "expiring-user", "t.expires = timezone.now() - timedelta(minutes=1)")
    async with httpx.AsyncClient(timeout=10) as http:
        assert_refused(
            await http.post(daphne_server.mcp_url, headers=bearer(expired), json=initialize_body()), "expired"
        )


async def test_token_is_refused_once_it_expires_even_while_cached(
    daphne_server: LiveServer, live_db: LiveDatabase
) -> None:
    live_db.create_user("expiring-user")
    _, soon = make_token(live_db, "expiring-user", "t.expires = timezone.now() + timedelta(seconds=3)")
    async with httpx.AsyncClient(timeout=10) as http:
        headers = await open_session(http, daphne_server, soon)  # resolved and cached now
        deadline = time.monotonic() + 15
        while True:
            response = await http.post(
                daphne_server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
            )
            if response.status_code != 200:
                break
            assert time.monotonic() < deadline, "the token was still accepted long after it expired"
            await asyncio.sleep(0.2)
    assert_refused(response, "expired")


async def test_revoked_token_is_401(daphne_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("revoked-user")
    token_id, plaintext = make_token(live_db, "revoked-user")
    live_db.manage("mcp_token", "revoke", str(token_id))
    async with httpx.AsyncClient(timeout=10) as http:
        assert_refused(
            await http.post(daphne_server.mcp_url, headers=bearer(plaintext), json=initialize_body()), "revoked"
        )


async def test_admin_revocation_takes_effect_on_the_next_request(
    daphne_server: LiveServer, live_db: LiveDatabase
) -> None:
    """The token is cached by the server after its first use; the admin's revoke clears it."""
    live_db.create_user("revoked-user")
    token_id, plaintext = make_token(live_db, "revoked-user")
    async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(timeout=10) as admin:
        headers = await open_session(http, daphne_server, plaintext)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert (await http.post(daphne_server.mcp_url, headers=headers, json=ping)).status_code == 200
        await admin_login(admin, daphne_server, live_db)
        await admin_revoke(admin, daphne_server, token_id)
        assert_refused(await http.post(daphne_server.mcp_url, headers=headers, json=ping), "revoked")


@pytest.mark.redis
async def test_admin_revocation_reaches_every_process(
    redis_pair: tuple[LiveServer, LiveServer], live_db: LiveDatabase
) -> None:
    a, b = redis_pair
    live_db.create_user("revoked-user")
    token_id, plaintext = make_token(live_db, "revoked-user")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient(timeout=10) as admin:
        headers = await open_session(http, a, plaintext)
        assert (await http.post(b.mcp_url, headers=headers, json=ping)).status_code == 200
        await admin_login(admin, a, live_db)
        await admin_revoke(admin, a, token_id)  # revoked through A's admin...
        assert_refused(await http.post(b.mcp_url, headers=headers, json=ping), "revoked")  # ...refused by B


@pytest.mark.redis
async def test_rate_limit_counts_calls_on_every_process(
    redis_pair: tuple[LiveServer, LiveServer], live_db: LiveDatabase
) -> None:
    a, b = redis_pair
    limit = 5
    live_db.create_user("limited-user")
    plaintext = live_db.create_token("limited-user", "--rate-limit", str(limit))
    async with httpx.AsyncClient(timeout=10) as http:
        on_a = await open_session(http, a, plaintext)
        on_b = await open_session(http, b, plaintext)
        servers = [(a, on_a), (b, on_b)]
        for number in range(limit):  # A, B, A, B, A: five calls, spread over both
            server, headers = servers[number % 2]
            response = await http.post(server.mcp_url, headers=headers, json=call_echo(number + 1, f"call {number}"))
            assert response.status_code == 200, f"call {number + 1} on {server.url}: {response.text}"
            assert response.json()["result"]["content"][0]["text"] == f"call {number}"
        for server, headers in ((b, on_b), (a, on_a)):  # over the limit on both processes
            refused = await http.post(server.mcp_url, headers=headers, json=call_echo(99, "one too many"))
            assert refused.status_code == 429, refused.text
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= 120
        # Only calls count: the session itself keeps working.
        listed = await http.post(a.mcp_url, headers=on_a, json={"jsonrpc": "2.0", "id": 100, "method": "tools/list"})
        assert listed.status_code == 200


async def test_revoking_a_token_ends_its_open_streams(
    redis_url: str, server_factory: Any, live_db: LiveDatabase
) -> None:
    """Open streams of a revoked token end at once, on every worker (not only its next request)."""
    import uuid

    from tests.sse_client import events, next_event

    server = server_factory(redis_url=redis_url, redis_prefix=uuid.uuid4().hex[:8], extra_env={"MCP_REQUIRE_AUTH": "1"})
    username = f"revoke-streams-{uuid.uuid4().hex[:8]}"
    live_db.create_user(username)
    token = live_db.create_token(username, "--name", "to revoke")
    keep = live_db.create_token(username, "--name", "kept")
    auth = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
    async with httpx.AsyncClient(timeout=15) as http:
        async with (
            http.stream("GET", f"{server.url}/mcp/sse", headers=auth) as revoked_stream,
            http.stream(
                "GET", f"{server.url}/mcp/sse", headers={**auth, "authorization": f"Bearer {keep}"}
            ) as kept_stream,
        ):
            revoked_reader, kept_reader = events(revoked_stream), events(kept_stream)
            assert (await next_event(revoked_reader)).event == "endpoint"
            kept_endpoint = (await next_event(kept_reader)).data
            live_db.manage(
                "mcp_token", "revoke", token[:12], extra_env=server.redis_env
            )  # another process, like the admin on another worker
            leftovers = await asyncio.wait_for(_drain(revoked_reader), 10)
            assert leftovers == []  # the stream ended cleanly
            # The other token's stream is untouched.
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            posted = await http.post(server.url + kept_endpoint, json=ping, headers={"authorization": f"Bearer {keep}"})
            assert posted.status_code == 202
            assert (await next_event(kept_reader)).json()["id"] == 1


async def _drain(reader: Any) -> list[Any]:
    return [event async for event in reader]
