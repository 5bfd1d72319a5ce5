"""The OAuth 2.1 resource-server side on live Daphne processes: protected resource metadata
(RFC 9728) at the well-known URLs, the 401 challenge pointing at it on all three transports,
tokens in the query string refused, static admin tokens unchanged, and with OAuth off no
response that mentions OAuth."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.live import LiveDatabase, LiveServer, start_server
from tests.test_tokens import bearer, initialize_body, make_token

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
