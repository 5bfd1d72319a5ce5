from __future__ import annotations

from collections.abc import Mapping

from ..conf import mcp_settings
from ..context import Caller


class AuthenticationFailed(Exception):
    """Credentials were given but are not valid (401 with ``WWW-Authenticate``)."""

    def __init__(self, message: str, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class BaseAuthentication:
    async def authenticate(self, headers: Mapping[str, str]) -> Caller | None:
        raise NotImplementedError


async def authenticate(headers: Mapping[str, str]) -> Caller | None:
    """Run the configured authentication classes in order; the first Caller wins."""
    for auth_class in mcp_settings.AUTHENTICATION_CLASSES:
        caller = await auth_class().authenticate(headers)
        if caller is not None:
            return caller
    return None
