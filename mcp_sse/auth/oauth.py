"""The OAuth 2.1 resource-server side: protected resource metadata (RFC 9728) and challenges.

OAuth is on when ``MCP_SSE["OAUTH"]`` names at least one authorization server. Then the MCP
endpoint's well-known metadata is served, a 401 points clients at it (``resource_metadata``)
and callers whose token carries scopes must hold the required ones (403 ``insufficient_scope``).
When it is off nothing here adds to any response: a static-token server must not look like an
OAuth one to connectors that probe (anthropics/claude-ai-mcp #854).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from ..conf import mcp_settings

WELL_KNOWN = "/.well-known/oauth-protected-resource"

OAUTH_DEFAULTS: dict[str, Any] = {
    # Issuer URLs of the authorization servers clients should sign in with (RFC 9728).
    "AUTHORIZATION_SERVERS": [],
    # Scopes advertised in the metadata (scopes_supported).
    "SCOPES": ["mcp"],
    # Scopes every request needs (named in the 401/403 challenges); None: the same as SCOPES.
    "REQUIRED_SCOPES": None,
    # The canonical resource URI (RFC 8707) when it cannot be built from the request
    # (e.g. "https://example.com/mcp"); None: scheme + host of the request + PATH_PREFIX.
    "RESOURCE": None,
    # Human-readable name in the metadata; None: SERVER_TITLE or SERVER_NAME.
    "RESOURCE_NAME": None,
    # Also serve the metadata at the root well-known URL (/.well-known/oauth-protected-resource).
    "ROOT_METADATA": False,
    # Scope -> tool names: a tool named here is listed and callable only with one of its scopes.
    "TOOL_SCOPES": {},
    # Seconds an OAuth token's validation stays cached (never past the token's expiry).
    "CACHE_SECONDS": 60,
}


def oauth_settings() -> dict[str, Any]:
    """``MCP_SSE["OAUTH"]`` merged over :data:`OAUTH_DEFAULTS`."""
    user = mcp_settings.OAUTH or {}
    return {**OAUTH_DEFAULTS, **(user if isinstance(user, Mapping) else {})}


def oauth_enabled() -> bool:
    return bool(oauth_settings()["AUTHORIZATION_SERVERS"])


def required_scopes() -> list[str]:
    conf = oauth_settings()
    required = conf["REQUIRED_SCOPES"]
    return list(conf["SCOPES"] if required is None else required)


def endpoint_path(prefix: str | None = None) -> str:
    return "/" + str(prefix if prefix is not None else mcp_settings.PATH_PREFIX).strip("/")


def metadata_paths(prefix: str | None = None) -> list[str]:
    """Paths the metadata is served at: the path-suffixed form first, then (opt-in) the root."""
    paths = [WELL_KNOWN + endpoint_path(prefix)]
    if oauth_settings()["ROOT_METADATA"]:
        paths.append(WELL_KNOWN)
    return paths


def request_base(scope: Mapping[str, Any]) -> str:
    """``scheme://host`` of an ASGI request, as Django builds it (``SECURE_PROXY_SSL_HEADER``,
    ``USE_X_FORWARDED_HOST``, ``ALLOWED_HOSTS`` all apply)."""
    from django.core.handlers.asgi import ASGIRequest

    request = ASGIRequest(dict(scope), io.BytesIO())
    return f"{request.scheme}://{request.get_host()}"


def canonical_resource(scope: Mapping[str, Any]) -> str:
    """This server's resource URI (RFC 8707): the MCP endpoint, no trailing slash or fragment."""
    configured = oauth_settings()["RESOURCE"]
    if configured:
        return str(configured).rstrip("/")
    return request_base(scope) + str(scope.get("root_path", "")).rstrip("/") + endpoint_path()


def metadata_url(scope: Mapping[str, Any]) -> str:
    """The absolute URL of the path-suffixed metadata document."""
    resource = canonical_resource(scope)
    scheme, _, rest = resource.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}{WELL_KNOWN}{slash}{path}"


def protected_resource_metadata(scope: Mapping[str, Any]) -> dict[str, Any]:
    conf = oauth_settings()
    return {
        "resource": canonical_resource(scope),
        "authorization_servers": list(conf["AUTHORIZATION_SERVERS"]),
        "scopes_supported": list(conf["SCOPES"]),
        "bearer_methods_supported": ["header"],
        "resource_name": conf["RESOURCE_NAME"] or mcp_settings.SERVER_TITLE or mcp_settings.SERVER_NAME,
    }


def _quote(value: str) -> str:
    return value.replace("\\", "").replace('"', "'")


def bearer_challenge(
    scope: Mapping[str, Any],
    *,
    error: str | None = None,
    description: str | None = None,
    scopes: Iterable[str] | None = None,
) -> bytes:
    """A ``WWW-Authenticate`` value. With OAuth on it carries ``resource_metadata`` (absolute)
    and ``scope``; with it off it is the plain ``Bearer realm="mcp"`` of static tokens."""
    parts = ['realm="mcp"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quote(description)}"')
    if oauth_enabled():
        wanted = list(scopes) if scopes is not None else required_scopes()
        if wanted:
            parts.append(f'scope="{_quote(" ".join(wanted))}"')
        parts.append(f'resource_metadata="{metadata_url(scope)}"')
    return ("Bearer " + ", ".join(parts)).encode("latin-1", "replace")


def missing_scopes(granted: frozenset[str] | None) -> list[str]:
    """Required scopes a caller lacks; callers without scopes (static tokens) lack none."""
    if granted is None or not oauth_enabled():
        return []
    return [s for s in required_scopes() if s not in granted]


def token_in_query(query_string: bytes) -> bool:
    """Whether the URL carries an ``access_token`` parameter (RFC 6750 section 2.3)."""
    from urllib.parse import parse_qsl

    if b"access_token" not in query_string:
        return False
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return any(name == "access_token" for name, _ in pairs)


def normalize_resource(uri: str) -> str:
    """RFC 8707 / RFC 3986 comparison form: scheme and host lower-cased, default port, fragment
    and trailing slash dropped (the spec asks servers to accept ``HTTPS://Host/mcp``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def audience_matches(audiences: Iterable[str], resource: str) -> bool:
    """Whether a token bound to ``audiences`` was issued for ``resource``. An empty list is a
    token bound to nothing, refused here (django-oauth-toolkit reads it as "any resource")."""
    wanted = normalize_resource(resource)
    return any(isinstance(a, str) and normalize_resource(a) == wanted for a in audiences)


def tool_scopes() -> dict[str, frozenset[str]]:
    """Tool name -> the scopes any one of which lets an OAuth caller see and call it
    (``OAUTH["TOOL_SCOPES"]`` maps scope -> tool names; tools not named need no extra scope)."""

    def compute() -> dict[str, frozenset[str]]:
        gates: dict[str, set[str]] = {}
        for scope_name, tools in (oauth_settings()["TOOL_SCOPES"] or {}).items():
            for tool_name in tools:
                gates.setdefault(tool_name, set()).add(scope_name)
        return {name: frozenset(scopes) for name, scopes in gates.items()}

    result: dict[str, frozenset[str]] = mcp_settings.derived("oauth_tool_scopes", compute)
    return result


def scope_allows_tool(granted: frozenset[str] | None, tool_name: str) -> bool:
    """Whether the token's scopes let its caller use ``tool_name`` (always, for non-OAuth callers)."""
    if granted is None:
        return True
    needed = tool_scopes().get(tool_name)
    return needed is None or bool(needed & granted)
