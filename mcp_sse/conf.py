"""The ``MCP_SSE`` settings dict, with documented defaults.

Read settings as attributes of :data:`mcp_settings` (``mcp_settings.PATH_PREFIX``). Values are
looked up lazily and cached; the cache is cleared when Django's ``setting_changed`` signal fires
for ``MCP_SSE`` (``override_settings`` in tests), the pattern DRF's ``api_settings`` uses.
Every key is documented in the README's settings reference.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Identity reported in initialize / server/discover.
    "SERVER_NAME": "mcp_sse",
    "SERVER_TITLE": None,
    "SERVER_VERSION": "0.1.0",
    "INSTRUCTIONS": None,
    # URL prefix of the MCP endpoints: <prefix>, <prefix>/sse, <prefix>/messages.
    "PATH_PREFIX": "/mcp",
    # None means "required when DEBUG is off".
    "REQUIRE_AUTH": None,
    # Besides "Authorization: Bearer", a header that may carry the token (n8n-style).
    "TOKEN_HEADER": "X-API-Key",
    "AUTHENTICATION_CLASSES": ["mcp_sse.auth.TokenAuthentication"],
    # OAuth 2.1 resource server (see mcp_sse.auth.oauth.OAUTH_DEFAULTS for the keys); None or
    # no AUTHORIZATION_SERVERS: off, and no response mentions OAuth.
    "OAUTH": None,
    # Seconds a resolved token stays in the cache. Changes through the admin or the models clear
    # it at once; this bounds changes the signals cannot see (another process, per-process cache).
    "TOKEN_CACHE_SECONDS": 30,
    # Seconds the admin's visibility rules stay cached. Admin changes clear the cache at once
    # (signals); the timeout only bounds how long a change made without signals (a raw SQL
    # update, another process on a per-process cache) takes to show. None: no timeout.
    "VISIBILITY_CACHE_SECONDS": 60,
    # Origins allowed to call the endpoint; None derives them from ALLOWED_HOSTS and
    # CSRF_TRUSTED_ORIGINS. "*" allows any origin (not recommended).
    "ALLOWED_ORIGINS": None,
    # Largest accepted POST body in bytes (413 beyond).
    "MAX_BODY_SIZE": 4 * 1024 * 1024,
    # Django cache alias holding sessions, resumable event logs and rate-limit counters.
    "CACHE_ALIAS": "default",
    # Idle seconds after which a session expires.
    "SESSION_TTL": 3600,
    # Seconds between ":" keep-alive comments on idle SSE streams.
    "KEEPALIVE_INTERVAL": 15.0,
    # Milliseconds sent in the SSE "retry:" field (2025-11-25 polling).
    "SSE_RETRY_MS": 1000,
    # Close a POST's SSE connection after this many seconds (the client resumes with
    # Last-Event-ID); None keeps it open until the response.
    "POST_STREAM_MAX_SECONDS": None,
    # Events kept per stream for Last-Event-ID replay, and how long (seconds).
    "EVENT_STORE_MAX_EVENTS": 1000,
    "EVENT_STORE_TTL": 600,
    # Seconds a tool waits for the client to answer sampling/elicitation/roots.
    "CLIENT_REQUEST_TIMEOUT": 300.0,
    # Items per page of tools/list, resources/list, prompts/list.
    "PAGE_SIZE": 100,
    # Inline $refs and avoid type arrays in schemas, for clients that choke on them (n8n).
    "FLAT_SCHEMAS": False,
    # Argument names dropped from every tools/call before validation when the tool does not
    # declare them, for clients that add their own to each call (n8n: ["toolCallId"]).
    "DROP_EXTRA_ARGUMENTS": [],
    # Module name looked up in each installed app (like admin.py).
    "AUTODISCOVER_MODULE": "mcp_tools",
    # Call log recorder class; None disables call logging.
    "CALL_RECORDER": "mcp_sse.audit.DatabaseCallRecorder",
    # Argument keys (case-insensitive regexes) whose values are redacted in the call log.
    "REDACT_KEYS": ["pass", "secret", "token", "api[_-]?key", "authorization", "credential"],
    # Days of call log the server keeps: the call-log writer deletes older rows by itself
    # (every 10 minutes, between batches). None keeps everything (or prune with mcp_prune_logs).
    "CALL_LOG_RETENTION_DAYS": None,
    # Largest serialised arguments/result kept per call log row, in characters.
    "CALL_LOG_MAX_CHARS": 8192,
    # Move the objects alive at start-up out of the garbage collector's sight (gc.freeze()) when
    # with_mcp() builds the app: full collections then scan only what requests allocate (the
    # benchmarks saw 55-78 ms pauses twice a second without it).
    "GC_FREEZE": True,
    # Threads sync tools, resources and prompts run on, per process (None: min(32, CPUs + 4),
    # what Python's default executor takes). A call beyond them waits for a free thread.
    "SYNC_TOOL_THREADS": None,
    # 2026-07-28 caching hints on list/read results.
    "CACHE_TTL_MS": 0,
    "CACHE_SCOPE": "private",
    # Seconds a 2026-07-28 input_required requestState stays valid (it is HMAC-signed).
    "REQUEST_STATE_TTL": 600,
    # Seconds a worker's lease on work others wait for (a call's answer, a task) outlives its
    # last renewal: the longest a killed worker's work goes unnoticed. Renewed every third.
    "LEASE_SECONDS": 15.0,
    # Seconds a stopping worker (SIGTERM/SIGINT, see the README's "Restarts and deploys") lets
    # its calls in flight finish before it cuts them off with an error; meanwhile it answers
    # new requests 503 + Retry-After.
    "DRAIN_SECONDS": 30.0,
    # Seconds in the Retry-After of the 503 answered while the shared store or channel layer
    # (Redis) cannot be reached.
    "UNAVAILABLE_RETRY_AFTER": 2,
    # Tasks (2026-07-28 tasks extension): how long a task is kept after its creation (ms; None:
    # no limit) and the polling interval suggested to clients (ms).
    "TASK_TTL_MS": 3_600_000,
    "TASK_POLL_INTERVAL_MS": 1000,
    # OpenTelemetry (the [otel] extra): a SERVER span per request and the MCP duration metrics,
    # once opentelemetry-api is installed and an SDK is configured. False: never imported.
    "OTEL_ENABLED": True,
    # Put tool call arguments and results on spans (gen_ai.tool.call.arguments/.result), with
    # REDACT_KEYS applied as in the call log. Off by default: they may hold personal data.
    "OTEL_CAPTURE_CONTENT": False,
}

# Settings holding dotted import paths, resolved on access.
IMPORT_STRINGS = {"AUTHENTICATION_CLASSES", "CALL_RECORDER"}


def import_from_string(path: str) -> Any:
    module_path, _, name = path.rpartition(".")
    try:
        return getattr(import_module(module_path), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"MCP_SSE: could not import {path!r}: {exc}") from exc


class MCPSettings:
    """Attribute access to ``settings.MCP_SSE`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._user: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user is None:
            from django.conf import settings

            self._user = dict(getattr(settings, "MCP_SSE", {}) or {})
        return self._user

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Unknown MCP_SSE setting: {name!r}")
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in IMPORT_STRINGS and value is not None:
            value = (
                [import_from_string(v) for v in value]
                if isinstance(value, list | tuple)
                else (import_from_string(value) if isinstance(value, str) else value)
            )
        if name == "REQUIRE_AUTH" and value is None:
            from django.conf import settings

            value = not settings.DEBUG
        self._cache[name] = value
        return value

    def derived(self, name: str, compute: Any) -> Any:
        """A value computed from settings, kept until the settings change (hot-path caching)."""
        key = f"derived:{name}"
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def forget_derived(self, name: str) -> None:
        """Drop a value kept by :meth:`derived` (recomputed on next use)."""
        self._cache.pop(f"derived:{name}", None)

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    def reload(self) -> None:
        self._cache.clear()
        self._user = None


mcp_settings = MCPSettings()


def reload_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("MCP_SSE", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "CACHES"):
        mcp_settings.reload()
