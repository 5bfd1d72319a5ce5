"""System checks for the traps of running an MCP server on Django (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import mcp_settings
from .registry.base import default_registry


@register(Tags.compatibility)
def check_channels(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if not layers or "default" not in layers:
        problems.append(
            Error(
                "No default channel layer is configured.",
                hint="Set CHANNEL_LAYERS: InMemoryChannelLayer for one process, channels_redis for several workers.",
                id="mcp_sse.E001",
            )
        )
    for alias, config in (layers or {}).items():
        backend = (config or {}).get("BACKEND")
        try:
            if not backend:
                raise ImportError("no BACKEND given")
            import_string(backend)
        except ImportError as exc:
            problems.append(
                Error(
                    f"The channel layer backend of CHANNEL_LAYERS[{alias!r}] cannot be imported: {exc}",
                    hint="Every MCP request would fail. For channels_redis install the redis extra "
                    "(pip install 'mcp-sse[redis]'); else fix the dotted path.",
                    id="mcp_sse.E013",
                )
            )
    if not getattr(settings, "ASGI_APPLICATION", None):
        problems.append(
            Error(
                "ASGI_APPLICATION is not set.",
                hint="Point it at an ASGI app wrapped with mcp_sse.asgi.with_mcp().",
                id="mcp_sse.E003",
            )
        )
    return problems


# channels_redis cannot run on Redis Cluster (async RedisCluster has no pub/sub, and its Lua
# scripts touch keys of several hash slots): it fails at run time, on the first message.
CLUSTER_HINT = (
    "channels_redis does not support Redis Cluster: point the layer at a single Redis, a "
    "primary with replicas, or Redis Sentinel (see the README's several-workers section)."
)


def _layer_hosts(config: dict[str, Any]) -> list[Any]:
    hosts = (config.get("CONFIG") or {}).get("hosts") or []
    return list(hosts) if isinstance(hosts, (list, tuple)) else [hosts]


def _names_a_cluster(host: Any) -> bool:
    if isinstance(host, str):
        return "cluster" in host.partition("://")[0].lower()
    if isinstance(host, dict):
        return bool(host.get("cluster") or host.get("startup_nodes"))
    return False


def _runs_in_cluster_mode(host: Any) -> bool:
    """Whether the Redis at ``host`` has cluster mode on (asked with a 1 s timeout; a Redis that
    does not answer is the readiness probe's business, not this check's)."""
    url = host if isinstance(host, str) else host.get("address") if isinstance(host, dict) else None
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        return False
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.info("cluster").get("cluster_enabled"))
        finally:
            client.close()
    except Exception:
        return False


def _redis_layer_hosts() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for alias, config in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        backend = str((config or {}).get("BACKEND", ""))
        if backend.startswith(("channels_redis.", "mcp_sse.layers.")):
            found.extend((alias, host) for host in _layer_hosts(config))
    return found


def _cluster_error(alias: str, host: Any) -> Error:
    return Error(f"CHANNEL_LAYERS[{alias!r}] uses Redis Cluster ({host!r}).", hint=CLUSTER_HINT, id="mcp_sse.E017")


@register(Tags.compatibility)
def check_layer_not_cluster(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Refuse a channels_redis layer configured for Redis Cluster."""
    return [_cluster_error(alias, host) for alias, host in _redis_layer_hosts() if _names_a_cluster(host)]


@register(Tags.compatibility, deploy=True)
def check_layer_redis_not_in_cluster_mode(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Under ``check --deploy``: ask each Redis of a channels_redis layer whether it runs in
    cluster mode (a cluster endpoint looks like any other URL)."""
    return [
        _cluster_error(alias, host)
        for alias, host in _redis_layer_hosts()
        if not _names_a_cluster(host) and _runs_in_cluster_mode(host)
    ]


@register(Tags.compatibility)
def check_registry(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    hints = {
        "duplicate": ("mcp_sse.E004", "Tool, resource and prompt names must be unique."),
        "invalid-name": ("mcp_sse.E005", "Tool and prompt names must match [A-Za-z0-9_.-]{1,128}."),
        "invalid-option": (
            "mcp_sse.E006",
            "register_model() filter/search/ordering fields must name fields of the model.",
        ),
    }
    problems = []
    for kind, message in default_registry.problems:
        check_id, hint = hints.get(kind, ("mcp_sse.E007", "Fix the registration."))
        problems.append(Error(message, hint=hint, id=check_id))
    return problems


@register(Tags.security, deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if any("GZipMiddleware" in m for m in getattr(settings, "MIDDLEWARE", [])):
        problems.append(
            Warning(
                "GZipMiddleware is enabled.",
                hint="Compressing event streams buffers them; mcp_sse endpoints bypass Django middleware, "
                "but make sure no proxy gzips text/event-stream either.",
                id="mcp_sse.W006",
            )
        )
    if not mcp_settings.REQUIRE_AUTH:
        problems.append(
            Warning(
                "MCP_SSE['REQUIRE_AUTH'] is off: anyone who can reach the endpoint can call tools.",
                id="mcp_sse.W007",
            )
        )
    if mcp_settings.ALLOWED_ORIGINS == "*":
        problems.append(
            Warning(
                "MCP_SSE['ALLOWED_ORIGINS'] is '*': browsers on any site may call the endpoint.",
                hint="List the origins that may call it (DNS-rebinding protection).",
                id="mcp_sse.W008",
            )
        )
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    if "InMemoryChannelLayer" in str(layer.get("BACKEND", "")):
        problems.append(
            Warning(
                "The in-memory channel layer only works with a single server process.",
                hint="With several workers, legacy SSE POSTs and client replies get lost: use channels_redis.",
                id="mcp_sse.W002",
            )
        )
    caches = getattr(settings, "CACHES", {})
    backend = str(caches.get(mcp_settings.CACHE_ALIAS, {}).get("BACKEND", "locmem"))
    if "locmem" in backend.lower() or "dummy" in backend.lower():
        problems.append(
            Warning(
                f"The {mcp_settings.CACHE_ALIAS!r} cache is process-local.",
                hint="Sessions and resumable streams must be shared by every worker: use a Redis cache.",
                id="mcp_sse.W009",
            )
        )
    return problems


@register(Tags.caches)
def check_cache_size(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    config = getattr(settings, "CACHES", {}).get(mcp_settings.CACHE_ALIAS, {})
    if "LocMemCache" in str(config.get("BACKEND", "")):
        max_entries = int((config.get("OPTIONS") or {}).get("MAX_ENTRIES", 300))
        if max_entries < 10_000:
            return [
                Warning(
                    f"The {mcp_settings.CACHE_ALIAS!r} LocMem cache keeps only {max_entries} entries.",
                    hint="Sessions and event logs live there; once full, LocMem evicts them and open streams "
                    "end. Set OPTIONS['MAX_ENTRIES'] (e.g. 200000) or use Redis.",
                    id="mcp_sse.W011",
                )
            ]
    return []


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    unknown = mcp_settings.unknown_keys()
    if unknown:
        problems.append(Warning(f"Unknown MCP_SSE settings: {', '.join(unknown)}", id="mcp_sse.W010"))
    threads = mcp_settings.SYNC_TOOL_THREADS
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        problems.append(
            Error(
                f"MCP_SSE['SYNC_TOOL_THREADS'] must be a positive integer or None, not {threads!r}",
                id="mcp_sse.E012",
            )
        )
    drop = mcp_settings.DROP_EXTRA_ARGUMENTS
    if not isinstance(drop, list | tuple) or not all(isinstance(name, str) for name in drop):
        problems.append(
            Error(
                f"MCP_SSE['DROP_EXTRA_ARGUMENTS'] must be a list of argument names, not {drop!r}",
                hint='For n8n: MCP_SSE["DROP_EXTRA_ARGUMENTS"] = ["toolCallId"]',
                id="mcp_sse.E014",
            )
        )
    retention = mcp_settings.CALL_LOG_RETENTION_DAYS
    bad_number = isinstance(retention, bool) or not isinstance(retention, int | float)
    if retention is not None and (bad_number or retention <= 0):
        problems.append(
            Error(
                f"MCP_SSE['CALL_LOG_RETENTION_DAYS'] must be a positive number of days or None, not {retention!r}",
                id="mcp_sse.E020",
            )
        )
    ttl = mcp_settings.TASK_TTL_MS
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        problems.append(
            Error(
                f"MCP_SSE['TASK_TTL_MS'] must be a positive integer (milliseconds) or None, not {ttl!r}",
                id="mcp_sse.E060",
            )
        )
    poll = mcp_settings.TASK_POLL_INTERVAL_MS
    if isinstance(poll, bool) or not isinstance(poll, int) or poll <= 0:
        problems.append(
            Error(
                f"MCP_SSE['TASK_POLL_INTERVAL_MS'] must be a positive integer (milliseconds), not {poll!r}",
                id="mcp_sse.E061",
            )
        )
    problems.extend(_oauth_problems())
    lease = mcp_settings.LEASE_SECONDS
    if isinstance(lease, bool) or not isinstance(lease, int | float) or lease <= 0:
        problems.append(Error(f"MCP_SSE['LEASE_SECONDS'] must be a positive number, not {lease!r}", id="mcp_sse.E015"))
    drain = mcp_settings.DRAIN_SECONDS
    if isinstance(drain, bool) or not isinstance(drain, int | float) or drain < 0:
        problems.append(
            Error(
                f"MCP_SSE['DRAIN_SECONDS'] must be a number of seconds, 0 or more, not {drain!r}",
                hint="0 cuts calls in flight off at once on SIGTERM (they still get an error and a call log row).",
                id="mcp_sse.E016",
            )
        )
    retry_after = mcp_settings.UNAVAILABLE_RETRY_AFTER
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
        problems.append(
            Error(
                f"MCP_SSE['UNAVAILABLE_RETRY_AFTER'] must be a whole number of seconds, 1 or more, not {retry_after!r}",
                id="mcp_sse.E018",
            )
        )
    for name in ("OTEL_ENABLED", "OTEL_CAPTURE_CONTENT"):
        flag = getattr(mcp_settings, name)
        if not isinstance(flag, bool):
            problems.append(Error(f"MCP_SSE[{name!r}] must be True or False, not {flag!r}", id="mcp_sse.E070"))
    return problems


def _oauth_problems() -> list[Any]:
    """MCP_SSE["OAUTH"]: known keys, absolute https issuer URLs, scope lists, a canonical resource."""
    from urllib.parse import urlsplit

    from .auth.oauth import OAUTH_DEFAULTS

    raw = mcp_settings.OAUTH
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Error(f"MCP_SSE['OAUTH'] must be a dict or None, not {raw!r}", id="mcp_sse.E070")]
    problems: list[Any] = []
    unknown = sorted(set(raw) - set(OAUTH_DEFAULTS))
    if unknown:
        problems.append(Error(f"Unknown MCP_SSE['OAUTH'] keys: {', '.join(unknown)}", id="mcp_sse.E071"))
    servers = raw.get("AUTHORIZATION_SERVERS", [])
    if not isinstance(servers, list | tuple) or not all(isinstance(s, str) for s in servers):
        problems.append(
            Error(
                f"MCP_SSE['OAUTH']['AUTHORIZATION_SERVERS'] must be a list of URLs, not {servers!r}", id="mcp_sse.E072"
            )
        )
    else:
        for server in servers:
            parts = urlsplit(server)
            local = parts.hostname in ("localhost", "127.0.0.1", "::1")
            if parts.scheme not in ("https", "http") or not parts.netloc or (parts.scheme == "http" and not local):
                problems.append(
                    Error(
                        f"MCP_SSE['OAUTH']['AUTHORIZATION_SERVERS'] entry {server!r} is not an absolute https URL",
                        hint="OAuth 2.1 requires https issuers (http only for localhost).",
                        id="mcp_sse.E073",
                    )
                )
    for key in ("SCOPES", "REQUIRED_SCOPES"):
        value = raw.get(key, OAUTH_DEFAULTS[key])
        if value is None and key == "REQUIRED_SCOPES":
            continue
        if not isinstance(value, list | tuple) or not all(isinstance(s, str) and s and " " not in s for s in value):
            problems.append(
                Error(
                    f"MCP_SSE['OAUTH']['{key}'] must be a list of scope names (no spaces), not {value!r}",
                    id="mcp_sse.E074",
                )
            )
    resource = raw.get("RESOURCE")
    if resource is not None:
        parts = urlsplit(str(resource))
        if not isinstance(resource, str) or parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
            problems.append(
                Error(
                    f"MCP_SSE['OAUTH']['RESOURCE'] must be an absolute URL without a fragment, not {resource!r}",
                    hint="The canonical URI of the MCP endpoint, e.g. https://example.com/mcp (RFC 8707).",
                    id="mcp_sse.E075",
                )
            )
    if "offline_access" in (raw.get("SCOPES") or ()):
        problems.append(
            Warning(
                "MCP_SSE['OAUTH']['SCOPES'] lists offline_access; the MCP spec says not to advertise it",
                id="mcp_sse.W076",
            )
        )
    return problems
