"""The OAuth 2.1 resource-server side on live Daphne processes: protected resource metadata
(RFC 9728) at the well-known URLs, the 401 challenge pointing at it on all three transports,
tokens in the query string refused, static admin tokens unchanged, and with OAuth off no
response that mentions OAuth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveDatabase, LiveServer, start_server
from tests.test_tokens import bearer, initialize_body, make_token, open_session

pytestmark = pytest.mark.live

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
ISSUER = "https://auth.example.com"
PROXY_HOST = "mcp.example.com"


@pytest.fixture(scope="module")
def oauth_server(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """OAuth on, auth required, behind a TLS proxy (forwarded headers honoured), root metadata on."""
    server = start_server(
        live_db,
        tmp_path_factory.mktemp("oauth-logs"),
        extra_env={
            "MCP_REQUIRE_AUTH": "1",
            "MCP_OAUTH_AUTHORIZATION_SERVERS": ISSUER,
            "MCP_OAUTH_ROOT_METADATA": "1",
            "DJANGO_BEHIND_PROXY": "1",
            "DJANGO_ALLOWED_HOSTS": PROXY_HOST,
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def static_server(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """OAuth off, auth required: the static-token deployment as it was before OAuth existed."""
    server = start_server(live_db, tmp_path_factory.mktemp("static-logs"), extra_env={"MCP_REQUIRE_AUTH": "1"})
    yield server
    server.stop()


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Bearer "), value
    params: dict[str, str] = {}
    for part in value[len("Bearer ") :].split('", '):
        name, _, raw = part.partition("=")
        params[name.strip()] = raw.strip().strip('"')
    return params


async def test_metadata_is_public_json_and_cors_open(oauth_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{oauth_server.url}/.well-known/oauth-protected-resource/mcp")
        preflight = await http.options(
            f"{oauth_server.url}/.well-known/oauth-protected-resource/mcp",
            headers={"origin": "http://localhost:6274", "access-control-request-method": "GET"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    document = response.json()
    assert document["resource"] == f"{oauth_server.url}/mcp"
    assert document["authorization_servers"] == [ISSUER]
    assert document["scopes_supported"] == ["mcp"]
    assert document["bearer_methods_supported"] == ["header"]
    assert document["resource_name"] == "mcp_sse demo library"
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]


async def test_root_metadata_when_enabled_names_the_same_resource(oauth_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        root = await http.get(f"{oauth_server.url}/.well-known/oauth-protected-resource")
    assert root.status_code == 200
    assert root.json()["resource"] == f"{oauth_server.url}/mcp"


async def test_resource_and_challenge_follow_the_proxy_headers(oauth_server: LiveServer) -> None:
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": PROXY_HOST}
    async with httpx.AsyncClient(timeout=10) as http:
        document = await http.get(f"{oauth_server.url}/.well-known/oauth-protected-resource/mcp", headers=forwarded)
        refused = await http.post(oauth_server.mcp_url, headers={**HEADERS, **forwarded}, json=initialize_body())
    assert document.json()["resource"] == f"https://{PROXY_HOST}/mcp"
    assert refused.status_code == 401
    params = challenge_params(refused.headers["www-authenticate"])
    assert params["resource_metadata"] == f"https://{PROXY_HOST}/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/mcp"), ("GET", "/mcp"), ("GET", "/mcp/sse"), ("POST", "/mcp/messages?session_id=x")],
    ids=["streamable-post", "streamable-get", "legacy-sse", "legacy-post"],
)
async def test_every_transport_answers_401_with_the_metadata_url(
    oauth_server: LiveServer, method: str, path: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        kwargs: dict = {"json": initialize_body()} if method == "POST" else {}
        response = await http.request(
            method,
            f"{oauth_server.url}{path}",
            headers={**HEADERS, "accept": "application/json, text/event-stream"},
            **kwargs,
        )
    assert response.status_code == 401, response.text
    params = challenge_params(response.headers["www-authenticate"])
    assert params["resource_metadata"] == f"{oauth_server.url}/.well-known/oauth-protected-resource/mcp"
    assert params["scope"] == "mcp"
    assert "error" not in params  # no credentials sent: no error code (RFC 6750 section 3.1)


async def test_a_bad_token_is_invalid_token_with_the_metadata_url(oauth_server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer("not-a-token"), json=initialize_body())
    assert response.status_code == 401
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"].startswith("http://127.0.0.1:")


async def test_a_token_in_the_query_string_is_refused(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    """RFC 6750 section 2.3 / OAuth 2.1 section 5.2: 400 invalid_request, even for a valid token."""
    live_db.create_user("oauth-query")
    _, token = make_token(live_db, "oauth-query")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{oauth_server.mcp_url}?access_token={token}", headers=HEADERS, json=initialize_body()
        )
    assert response.status_code == 400
    assert challenge_params(response.headers["www-authenticate"])["error"] == "invalid_request"
    assert "query string" in response.json()["error"]["message"]


async def test_static_admin_tokens_keep_working_with_oauth_on(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("oauth-static")
    _, token = make_token(live_db, "oauth-static")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "mcp_sse demo"


async def test_with_oauth_off_no_response_mentions_oauth(static_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("static-only")
    _, token = make_token(live_db, "static-only")
    async with httpx.AsyncClient(timeout=10) as http:
        responses = [
            await http.post(static_server.mcp_url, headers=HEADERS, json=initialize_body()),
            await http.get(f"{static_server.url}/mcp/sse", headers={"accept": "text/event-stream"}),
            await http.post(f"{static_server.url}/mcp/messages?session_id=x", headers=HEADERS, json=initialize_body()),
            await http.post(static_server.mcp_url, headers=bearer("wrong"), json=initialize_body()),
            await http.get(f"{static_server.url}/.well-known/oauth-protected-resource/mcp"),
            await http.get(f"{static_server.url}/.well-known/oauth-protected-resource"),
            await http.post(static_server.mcp_url, headers=bearer(token), json=initialize_body()),
        ]
    statuses = [r.status_code for r in responses]
    assert statuses == [401, 401, 401, 401, 404, 404, 200]
    # Exactly the challenges static tokens always had.
    assert responses[0].headers["www-authenticate"] == 'Bearer realm="mcp"'
    assert responses[3].headers["www-authenticate"] == (
        'Bearer realm="mcp", error="invalid_token", error_description="The access token is not valid."'
    )
    for response in responses:
        text = (str(response.headers) + response.text).lower()
        assert "resource_metadata" not in text
        # (Django's debug 404 page echoes the path we asked for; that echo is not an invitation.)
        assert "oauth" not in text.replace("oauth-protected-resource", ""), response.url
        assert "scope=" not in response.headers.get("www-authenticate", "")


# -- django-oauth-toolkit tokens (DOTAuthentication) ---------------------------------------------


def make_dot_token(
    live_db: LiveDatabase,
    username: str,
    *,
    resource: list[str],
    scope: str = "mcp",
    expires_in: int = 3600,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """A django-oauth-toolkit access token for ``username``, issued to a public client, as the
    toolkit stores it after an authorization-code exchange."""
    out = live_db.manage(
        "shell",
        "--no-imports",
        "-c",
        "import secrets\n"
        "from datetime import timedelta\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from oauth2_provider.models import get_access_token_model, get_application_model\n"
        "App = get_application_model()\n"
        "app, _ = App.objects.get_or_create(name='Test connector', defaults=dict(client_id='test-connector',"
        " client_type=App.CLIENT_PUBLIC, authorization_grant_type=App.GRANT_AUTHORIZATION_CODE,"
        " redirect_uris='http://127.0.0.1/callback'))\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        "raw = secrets.token_urlsafe(30)\n"
        f"t = get_access_token_model().objects.create(user=u, application=app, token=raw, scope={scope!r},"
        f" resource={resource!r}, expires=timezone.now() + timedelta(seconds={expires_in}))\n"
        "print(t.pk, raw)\n",
        extra_env=extra_env,
    )
    pk, raw = out.strip().splitlines()[-1].split()
    return int(pk), raw


def call_body(name: str, arguments: dict, request_id: int = 1) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def assert_invalid_token(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert reason in params["error_description"]
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")


async def test_dot_token_acts_as_its_user_and_is_logged_with_client_and_scopes(
    oauth_server: LiveServer, live_db: LiveDatabase
) -> None:
    import asyncio
    import json

    live_db.create_user("dot-reader")
    _, token = make_dot_token(live_db, "dot-reader", resource=[oauth_server.mcp_url])
    async with httpx.AsyncClient(timeout=10) as http:
        headers = await open_session(http, oauth_server, token)
        listed = await http.post(
            oauth_server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
        called = await http.post(oauth_server.mcp_url, headers=headers, json=call_body("echo", {"text": "hi"}, 2))
        gated = await http.post(oauth_server.mcp_url, headers=headers, json=call_body("add", {"a": 1, "b": 2}, 3))
    names = {t["name"] for t in _payload(listed)["result"]["tools"]}
    assert "echo" in names and "add" not in names  # "add" needs mcp:math (TOOL_SCOPES in the demo)
    assert _payload(called)["result"]["content"][0]["text"] == "hi"
    assert "error" in _payload(gated) or _payload(gated)["result"].get("isError")
    await asyncio.sleep(0.5)  # the call log is written in batches every 0.1 s
    rows = json.loads(
        live_db.shell(
            "import json\n"
            "from mcp_sse.models import CallLog\n"
            "print(json.dumps(list(CallLog.objects.filter(user__username='dot-reader', tool='echo')"
            ".values('oauth_client', 'scopes', 'token_id'))))\n"
        )
        .strip()
        .splitlines()[-1]
    )
    assert rows == [{"oauth_client": "test-connector", "scopes": "mcp", "token_id": None}]


async def test_a_tool_scope_makes_the_gated_tool_usable(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("dot-math")
    _, token = make_dot_token(live_db, "dot-math", resource=[oauth_server.mcp_url], scope="mcp mcp:math")
    async with httpx.AsyncClient(timeout=10) as http:
        headers = await open_session(http, oauth_server, token)
        called = await http.post(oauth_server.mcp_url, headers=headers, json=call_body("add", {"a": 1, "b": 2}))
    assert _payload(called)["result"]["structuredContent"]["result"] == 3


async def test_dot_token_for_another_resource_is_401(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("dot-elsewhere")
    _, token = make_dot_token(live_db, "dot-elsewhere", resource=["https://api.example.com/other"])
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert_invalid_token(response, "another resource")


async def test_dot_token_bound_to_no_resource_is_401(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("dot-unbound")
    _, token = make_dot_token(live_db, "dot-unbound", resource=[])
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert_invalid_token(response, "not bound to a resource")


async def test_expired_dot_token_is_401(oauth_server: LiveServer, live_db: LiveDatabase) -> None:
    live_db.create_user("dot-expired")
    _, token = make_dot_token(live_db, "dot-expired", resource=[oauth_server.mcp_url], expires_in=-60)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert_invalid_token(response, "expired")


async def test_dot_token_without_the_required_scope_is_403_insufficient_scope(
    oauth_server: LiveServer, live_db: LiveDatabase
) -> None:
    live_db.create_user("dot-noscope")
    _, token = make_dot_token(live_db, "dot-noscope", resource=[oauth_server.mcp_url], scope="profile")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert response.status_code == 403, response.text
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "mcp"
    assert params["resource_metadata"] == f"{oauth_server.url}/.well-known/oauth-protected-resource/mcp"


async def test_uppercase_scheme_and_host_in_the_bound_resource_are_accepted(
    oauth_server: LiveServer, live_db: LiveDatabase
) -> None:
    live_db.create_user("dot-upper")
    upper = oauth_server.mcp_url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/"
    _, token = make_dot_token(live_db, "dot-upper", resource=[upper])
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(oauth_server.mcp_url, headers=bearer(token), json=initialize_body())
    assert response.status_code == 200, response.text


async def test_revoking_a_dot_token_refuses_it_and_ends_its_open_streams(
    redis_url: str, server_factory: Any, live_db: LiveDatabase
) -> None:
    """DOT revokes by deleting the token (its revoke endpoint, a revoked refresh token, the
    admin): from another process here, so the end reaches the server over Redis."""
    import asyncio
    import uuid

    from tests.sse_client import events, next_event

    server = server_factory(
        redis_url=redis_url,
        redis_prefix=uuid.uuid4().hex[:8],
        extra_env={"MCP_REQUIRE_AUTH": "1", "MCP_OAUTH_AUTHORIZATION_SERVERS": ISSUER},
    )
    username = f"dot-revoke-{uuid.uuid4().hex[:8]}"
    live_db.create_user(username)
    pk, token = make_dot_token(live_db, username, resource=[server.mcp_url])
    async with httpx.AsyncClient(timeout=15) as http:
        headers = await open_session(http, server, token)
        async with (
            http.stream(
                "GET",
                f"{server.url}/mcp/sse",
                headers={"authorization": f"Bearer {token}", "accept": "text/event-stream"},
            ) as legacy_stream,
            http.stream("GET", server.mcp_url, headers={**headers, "accept": "text/event-stream"}) as streamable_stream,
        ):
            assert legacy_stream.status_code == 200 and streamable_stream.status_code == 200
            legacy = events(legacy_stream)
            assert (await next_event(legacy)).event == "endpoint"
            live_db.manage(
                "shell",
                "--no-imports",
                "-c",
                f"from oauth2_provider.models import get_access_token_model\nget_access_token_model().objects.get(pk={pk}).revoke()\n",
                extra_env=server.redis_env,
            )
            assert await asyncio.wait_for(_drain(legacy), 10) == []
            assert await asyncio.wait_for(_drain(events(streamable_stream)), 10) == []
        refused = await http.post(server.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
    assert_invalid_token(refused, "not valid")


async def _drain(reader: Any) -> list[Any]:
    return [event async for event in reader if event.data]


def _payload(response: httpx.Response) -> dict:
    """The JSON-RPC message of a response sent as JSON or as one SSE event."""
    import json

    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return json.loads(data[-1])
