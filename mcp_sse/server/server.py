"""The server object: what the consumers of one mounted endpoint share.

``with_mcp()`` / ``mcp_urlpatterns()`` build one :class:`MCPServer` and hand it to every
consumer through ``as_asgi(server=...)``: no module-level dispatcher or in-flight table.
"""

from __future__ import annotations

from ..protocol.jsonrpc import Message
from ..registry.base import Registry
from .dispatcher import Dispatcher
from .eras import Era, StatefulEra, StatelessEra, is_stateless
from .events import EventStore
from .requests import RequestLifecycle
from .session import SessionStore
from .tasks import TaskManager


class MCPServer:
    """The stores, the dispatcher, the eras (policies chosen per request) and the request
    lifecycle. The stores keep nothing in memory (all state is in the shared cache)."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.sessions = SessionStore()
        self.events = EventStore()
        self.dispatcher = Dispatcher(registry, self.sessions)
        self.stateful = StatefulEra(self.dispatcher)
        self.stateless = StatelessEra(self.dispatcher)
        self.requests = RequestLifecycle()
        self.tasks = TaskManager(self.dispatcher, self.requests)
        self.stateless.tasks = self.tasks

    def era_for(self, message: Message, *, batch: bool, session_header: str, version_header: str) -> Era:
        """The era of a POSTed message (see :func:`~mcp_sse.server.eras.is_stateless`)."""
        if is_stateless(message, batch=batch, session_header=session_header, version_header=version_header):
            return self.stateless
        return self.stateful
