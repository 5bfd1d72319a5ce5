"""Protocol revisions, negotiation and era detection."""

from __future__ import annotations

from typing import Any

V2024_11_05 = "2024-11-05"
V2025_03_26 = "2025-03-26"
V2025_06_18 = "2025-06-18"
V2025_11_25 = "2025-11-25"
V2026_07_28 = "2026-07-28"

# Handshake ("legacy") revisions, oldest first.
HANDSHAKE_VERSIONS: tuple[str, ...] = (V2024_11_05, V2025_03_26, V2025_06_18, V2025_11_25)
# Stateless ("modern") revisions, oldest first.
MODERN_VERSIONS: tuple[str, ...] = (V2026_07_28,)
ALL_VERSIONS: tuple[str, ...] = HANDSHAKE_VERSIONS + MODERN_VERSIONS
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]

META_PREFIX = "io.modelcontextprotocol/"
META_PROTOCOL_VERSION = META_PREFIX + "protocolVersion"
META_CLIENT_CAPABILITIES = META_PREFIX + "clientCapabilities"
META_CLIENT_INFO = META_PREFIX + "clientInfo"
META_LOG_LEVEL = META_PREFIX + "logLevel"
META_SERVER_INFO = META_PREFIX + "serverInfo"
META_SUBSCRIPTION_ID = META_PREFIX + "subscriptionId"


def negotiate(requested: Any) -> str:
    """The version the server answers ``initialize`` with.

    The client's version when we speak it, otherwise our latest handshake revision (the client
    then decides whether it can continue).
    """
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def at_least(version: str, minimum: str) -> bool:
    """Revision dates compare correctly as strings (YYYY-MM-DD)."""
    return version >= minimum


def is_modern_request(params: Any) -> bool:
    """A request carrying the per-request protocol version in ``_meta`` is stateless (2026+)."""
    if not isinstance(params, dict):
        return False
    meta = params.get("_meta")
    return isinstance(meta, dict) and META_PROTOCOL_VERSION in meta


# The tasks extension (SEP-2663), declared per request in _meta's client capabilities.
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def declares_extension(client_capabilities: Any, extension: str) -> bool:
    """Whether a request's client capabilities declare ``extension``."""
    extensions = client_capabilities.get("extensions") if isinstance(client_capabilities, dict) else None
    return isinstance(extensions, dict) and extension in extensions
