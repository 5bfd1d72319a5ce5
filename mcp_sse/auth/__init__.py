"""Authentication: request headers -> :class:`~mcp_sse.context.Caller`.

Authentication classes are listed in ``MCP_SSE["AUTHENTICATION_CLASSES"]``. Each has an async
``authenticate(headers)`` that returns a Caller, returns None (no credentials of its kind), or
raises :class:`AuthenticationFailed` (credentials present but bad).
"""

from __future__ import annotations

from .base import AuthenticationFailed, BaseAuthentication, authenticate
from .tokens import TokenAuthentication, forget_token

__all__ = [
    "AuthenticationFailed",
    "BaseAuthentication",
    "DOTAuthentication",
    "TokenAuthentication",
    "authenticate",
    "forget_token",
]


def __getattr__(name: str) -> object:
    # DOTAuthentication imports nothing of django-oauth-toolkit until it runs, but stays out of
    # the package import so sites without the [oauth] extra import mcp_sse.auth as before.
    if name == "DOTAuthentication":
        from .dot import DOTAuthentication

        return DOTAuthentication
    raise AttributeError(name)
