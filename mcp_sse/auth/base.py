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

    async def authenticate_for(self, headers: Mapping[str, str], resource: str) -> Caller | None:
        """Authenticate a request made to ``resource`` (this server's canonical URI, RFC 8707).
        Classes whose tokens are bound to a resource (OAuth) override this; others ignore it."""
        return await self.authenticate(headers)


async def authenticate(headers: Mapping[str, str], resource: str = "") -> Caller | None:
    """Run the configured authentication classes in order; the first Caller wins.

    A class that refuses the credentials does not end the search: a token unknown to one
    validator may be another's (an admin token, then an OAuth one). When none accepts them, the
    first refusal is raised, so with one class configured the answer is exactly that class's.
    """
    refused: AuthenticationFailed | None = None
    for auth_class in mcp_settings.AUTHENTICATION_CLASSES:
        try:
            caller = await auth_class().authenticate_for(headers, resource)
        except AuthenticationFailed as exc:
            if refused is None or (refused.message == UNKNOWN_TOKEN and exc.message != UNKNOWN_TOKEN):
                refused = exc
            continue
        if caller is not None:
            return caller
    if refused is not None:
        raise refused
    return None


# The refusal of a token a validator has never seen; any more specific refusal wins over it.
UNKNOWN_TOKEN = "The access token is not valid."
