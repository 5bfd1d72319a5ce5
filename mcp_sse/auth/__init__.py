"""Authentication: request headers -> :class:`~mcp_sse.context.Caller`.

Authentication classes are listed in ``MCP_SSE["AUTHENTICATION_CLASSES"]``. Each has an async
``authenticate(headers)`` that returns a Caller, returns None (no credentials of its kind), or
raises :class:`AuthenticationFailed` (credentials present but bad).
"""

from __future__ import annotations

from .base import AuthenticationFailed, BaseAuthentication, authenticate
from .tokens import TokenAuthentication, forget_token

__all__ = ["AuthenticationFailed", "BaseAuthentication", "TokenAuthentication", "authenticate", "forget_token"]
