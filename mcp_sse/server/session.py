"""Sessions shared by every worker, kept in the Django cache (Redis in production).

Nothing about a session lives in a worker's memory: any worker can serve any request of any
session, which is what lets several Daphne processes run without sticky sessions.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..conf import mcp_settings
from ..store import shared_cache
from . import telemetry


def new_id() -> str:
    """A cryptographically random id: URL-safe, visible ASCII, valid in channel group names."""
    return secrets.token_urlsafe(24)


@dataclass
class Session:
    id: str
    principal: str
    transport: str  # "streamable-http" or "sse"
    protocol_version: str = ""
    client_info: dict[str, Any] = field(default_factory=dict)
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    initialized: bool = False
    log_level: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    touched: float = field(default_factory=time.time)

    @property
    def client_name(self) -> str:
        return str(self.client_info.get("name", ""))

    @property
    def client_version(self) -> str:
        return str(self.client_info.get("version", ""))


def _key(session_id: str) -> str:
    return f"mcp_sse:session:{session_id}"


class SessionStore:
    """Create, read, update and end sessions; idle ones expire after ``SESSION_TTL``."""

    @property
    def cache(self) -> Any:
        return shared_cache()

    async def create(self, principal: str, transport: str, **fields: Any) -> Session:
        session = Session(id=new_id(), principal=principal, transport=transport, **fields)
        await self.save(session)
        return session

    async def get(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        data = await self.cache.get(_key(session_id))
        if data is None:
            return None
        session = Session(**data)
        # Refresh the idle expiry now and then, not on every request (a cache write each time).
        if time.time() - session.touched > mcp_settings.SESSION_TTL / 10:
            session.touched = time.time()
            await self.save(session)
        return session

    async def save(self, session: Session) -> None:
        await self.cache.set(_key(session.id), dataclasses.asdict(session), mcp_settings.SESSION_TTL)

    async def delete(self, session_id: str) -> None:
        await self.cache.delete(_key(session_id))

    async def end(self, session: Session) -> None:
        """The session is over (its client deleted it, or its legacy stream closed): forgotten,
        and its duration recorded (``mcp.server.session.duration``) when telemetry is on."""
        await self.delete(session.id)
        telemetry.session_ended(session.created, session.protocol_version)
