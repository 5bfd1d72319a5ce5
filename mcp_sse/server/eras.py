"""Eras: how the server serves a request, chosen per request (a strategy, not a wrapper).

* :class:`StatefulEra` — 2024-11-05 … 2025-11-25: a handshake makes a session; tools may ask
  the client mid-call through server-to-client requests.
* :class:`StatelessEra` — 2026-07-28: every request stands alone. Its ``_meta`` names the
  protocol version and the client's capabilities, its headers mirror the body, and anything the
  server needs from the client comes back through MRTR (see :mod:`.mrtr`) instead of a
  server-to-client request. Results carry ``resultType``, the server's identity and caching hints.

A refusal before serving is :class:`Rejected` (a JSON-RPC error code, no HTTP status: the
transports own the table that maps outcomes to statuses).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..conf import mcp_settings
from ..context import LOG_LEVELS, Caller, RequestInfo
from ..protocol import errors, versions
from ..protocol import headers as mirrored
from ..protocol.errors import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    UNSUPPORTED_PROTOCOL_VERSION,
    MCPError,
    echo,
    method_not_found,
)
from ..protocol.jsonrpc import Message, Notification, Request, error_message, result_message
from . import telemetry
from .exchange import NO_PORT, Exchange, Port
from .mrtr import MRTR_METHODS, BeginTask, InputRequired, ModernExchange, RequestMeta
from .session import Session

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger("mcp_sse")

# Methods a modern server serves; everything else (initialize, ping, logging/setLevel,
# resources/subscribe, resources/unsubscribe, unknown names) is "method not found".
MODERN_METHODS = frozenset(
    {
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "subscriptions/listen",
        # The tasks extension (served by the server's TaskHandling).
        "tasks/get",
        "tasks/update",
        "tasks/cancel",
    }
)
TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
# Results that carry caching hints (SEP-2549).
CACHEABLE_METHODS = frozenset(
    {"server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a transport knows about one client request, handed to the server as a value."""

    request: Request
    caller: Caller
    transport: str
    remote_addr: str = ""
    session_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    remote_port: int | None = None
    http_version: str = ""


class Rejected(MCPError):
    """A request refused before it is served: a JSON-RPC error whose HTTP status the transport
    picks (see ``transports/status.py``); never raised once the dispatcher runs."""


def supported_versions() -> list[str]:
    """Every revision this server speaks, newest first (it is dual-era)."""
    return list(reversed(versions.ALL_VERSIONS))


def cache_hints() -> dict[str, Any]:
    ttl = mcp_settings.CACHE_TTL_MS
    scope = mcp_settings.CACHE_SCOPE
    return {
        "ttlMs": ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 0 else 0,
        "cacheScope": scope if scope in ("public", "private") else "private",
    }


def parse_meta(params: Mapping[str, Any]) -> RequestMeta:
    """The ``_meta`` every modern request carries; :class:`Rejected` (-32602) if invalid."""
    meta = params.get("_meta")
    if not isinstance(meta, Mapping):
        raise Rejected(INVALID_PARAMS, "Invalid params: a modern request needs params._meta")
    version = meta.get(versions.META_PROTOCOL_VERSION)
    if not isinstance(version, str) or not version:
        raise Rejected(INVALID_PARAMS, f"Invalid params: _meta needs {versions.META_PROTOCOL_VERSION!r}")
    capabilities = meta.get(versions.META_CLIENT_CAPABILITIES)
    if not isinstance(capabilities, Mapping):
        raise Rejected(INVALID_PARAMS, f"Invalid params: _meta needs {versions.META_CLIENT_CAPABILITIES!r} (an object)")
    client_info = meta.get(versions.META_CLIENT_INFO)
    if client_info is not None and not isinstance(client_info, Mapping):
        raise Rejected(INVALID_PARAMS, f"Invalid params: {versions.META_CLIENT_INFO!r} must be an object")
    log_level = meta.get(versions.META_LOG_LEVEL)
    if log_level is not None and log_level not in LOG_LEVELS:
        raise Rejected(
            INVALID_PARAMS, f"Invalid params: {versions.META_LOG_LEVEL!r} must be one of {', '.join(LOG_LEVELS)}"
        )
    token = meta.get("progressToken")
    if token is not None and (not isinstance(token, str | int) or isinstance(token, bool)):
        raise Rejected(INVALID_PARAMS, "Invalid params: progressToken must be a string or an integer")
    return RequestMeta(
        protocol_version=version,
        client_capabilities=dict(capabilities),
        client_info=dict(client_info or {}),
        log_level=log_level,
        progress_token=token,
    )


class Era:
    """How requests of one family of protocol revisions are served."""

    name: ClassVar[str] = ""
    stateless: ClassVar[bool] = False

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def handle(self, request: Request, exchange: Exchange) -> dict[str, Any]:
        """Serve one request; returns its JSON-RPC response message (never raises, except
        ``CancelledError``, which the request lifecycle owns)."""
        return await self.dispatcher.handle(request, exchange)


class StatefulEra(Era):
    """2024-11-05 … 2025-11-25: sessions made by ``initialize``."""

    name = "stateful"

    def exchange(self, facts: RequestFacts, session: Session | None, port: Port = NO_PORT) -> Exchange:
        """An exchange for a request of ``session`` (None: an ``initialize`` making one)."""
        request = facts.request
        meta = request.meta
        info = RequestInfo(
            request_id=request.id,
            method=request.method,
            session_id=session.id if session else None,
            protocol_version=session.protocol_version if session else "",
            transport=facts.transport,
            client_name=session.client_name if session else "",
            client_version=session.client_version if session else "",
            client_capabilities=session.client_capabilities if session else {},
            remote_addr=facts.remote_addr,
            progress_token=meta.get("progressToken"),
            remote_port=facts.remote_port,
            http_version=facts.http_version,
        )
        return Exchange(caller=facts.caller, info=info, session=session, port=port)

    async def notification(
        self,
        note: Notification,
        caller: Caller,
        session: Session,
        transport: str,
        *,
        remote_addr: str = "",
        remote_port: int | None = None,
        http_version: str = "",
    ) -> None:
        """A client notification of ``session`` (replies and cancellations are the lifecycle's),
        handled inside its OpenTelemetry span when telemetry is on."""
        info = RequestInfo(
            method=note.method,
            session_id=session.id,
            protocol_version=session.protocol_version,
            transport=transport,
            client_capabilities=session.client_capabilities,
            remote_addr=remote_addr,
            remote_port=remote_port,
            http_version=http_version,
        )
        span = telemetry.start_request(note.method, note.params, None, info)
        try:
            await self.dispatcher.handle_notification(note, Exchange(caller=caller, info=info, session=session))
        finally:
            if span is not None:
                span.end(None)


def declares_tasks(meta: RequestMeta) -> bool:
    """Whether the request's own ``_meta`` declares the tasks extension (per request, SEP-2663)."""
    return versions.declares_extension(meta.client_capabilities, versions.TASKS_EXTENSION)


def missing_extension(what: str) -> MCPError:
    """-32021 naming the tasks extension as the capability the request lacks."""
    return errors.missing_extension(what, versions.TASKS_EXTENSION)


class TaskHandling(Protocol):
    """What the era needs of the tasks extension (``mcp_sse.server.tasks.TaskManager``)."""

    async def create(self, request: Request, exchange: ModernExchange, answers: dict[str, Any]) -> dict[str, Any]: ...

    async def handle(self, request: Request, exchange: ModernExchange) -> dict[str, Any]: ...


class StatelessEra(Era):
    """2026-07-28: self-contained requests, MRTR, no sessions."""

    name = "stateless"
    stateless = True
    transport = "stateless"
    # Set by the server object: serves the tasks extension.
    tasks: TaskHandling | None = None

    def admit(self, facts: RequestFacts) -> RequestMeta:
        """Everything checked before a modern request is served, in the spec's order of concerns:
        ``_meta`` (-32602), header/body agreement (-32020), the version (-32022), the method
        (-32601), then the headers mirroring names and tool arguments (-32020)."""
        request = facts.request
        meta = parse_meta(request.params)
        try:
            headers = mirrored.collect(facts.headers)
            mirrored.check_protocol_version(headers, meta.protocol_version)
        except mirrored.HeaderMismatch as exc:
            raise Rejected(HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
        if meta.protocol_version not in versions.MODERN_VERSIONS:
            raise Rejected(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"Unsupported protocol version: {echo(meta.protocol_version)}",
                {"supported": supported_versions(), "requested": echo(meta.protocol_version)},
            )
        try:
            mirrored.check_method_and_name(headers, request.method, request.params)
        except mirrored.HeaderMismatch as exc:
            raise Rejected(HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
        if request.method not in MODERN_METHODS:
            raise Rejected(METHOD_NOT_FOUND, method_not_found(request.method).message)
        if request.method == "tools/call":
            name = request.params.get("name")
            tool = self.dispatcher.registry.tools.get(name) if isinstance(name, str) else None
            arguments = request.params.get("arguments")
            if tool is not None and isinstance(arguments, Mapping | None):
                try:
                    mirrored.check_parameter_headers(headers, tool.input_schema, arguments or {})
                except mirrored.HeaderMismatch as exc:
                    raise Rejected(HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
        return meta

    def exchange(self, facts: RequestFacts, meta: RequestMeta, port: Port = NO_PORT) -> ModernExchange:
        request = facts.request
        client_info = meta.client_info
        info = RequestInfo(
            request_id=request.id,
            method=request.method,
            session_id=None,
            protocol_version=meta.protocol_version,
            transport=self.transport,
            client_name=str(client_info.get("name") or ""),
            client_version=str(client_info.get("version") or ""),
            client_capabilities=meta.client_capabilities,
            remote_addr=facts.remote_addr,
            progress_token=meta.progress_token,
            remote_port=facts.remote_port,
            http_version=facts.http_version,
        )
        return ModernExchange(caller=facts.caller, info=info, port=port, meta=meta, params=request.params)

    def finish_result(self, method: str, result: dict[str, Any], *, retried: bool) -> dict[str, Any]:
        """Add what every modern result carries: ``resultType``, server identity, caching hints."""
        out = dict(result)
        out.setdefault("resultType", "complete")
        meta = dict(out.get("_meta") or {})
        meta[versions.META_SERVER_INFO] = self.dispatcher.server_info()
        out["_meta"] = meta
        if method in CACHEABLE_METHODS and out["resultType"] == "complete":
            hints = cache_hints()
            if retried:
                # A result computed from this client's answers must not be reused (SEP-2549).
                hints = {"ttlMs": 0, "cacheScope": "private"}
            out.update(hints)
        return out

    def discover(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": supported_versions(),
            "capabilities": self.dispatcher.capabilities(),
        }
        if self.tasks is not None:
            result["capabilities"]["extensions"] = {versions.TASKS_EXTENSION: {}}
        if mcp_settings.INSTRUCTIONS:
            result["instructions"] = mcp_settings.INSTRUCTIONS
        return result

    async def task_decision(self, request: Request, exchange: ModernExchange) -> dict[str, Any] | None:
        """The server decides per call whether a ``tools/call`` runs as a task: a response when
        the decision answers the call (a task created, or -32021 for a required task the request
        cannot take); None to serve it inline (possibly until ``ctx.begin_task()``)."""
        name = request.params.get("name")
        tool = self.dispatcher.registry.tools.get(name) if isinstance(name, str) else None
        if tool is None or tool.task is None or self.tasks is None:
            return None
        if not declares_tasks(exchange.meta):
            if tool.task == "required":
                return error_message(request.id, missing_extension(f"The tool {tool.name!r}").to_error())
            return None
        try:
            await self.dispatcher.find_tool(tool.name, exchange)  # hidden tools stay unknown
        except MCPError as exc:
            return error_message(request.id, exc.to_error())
        if tool.task_starts == "begin_task":
            exchange.task_gate = True  # inline until ctx.begin_task()
            return None
        created = await self.tasks.create(request, exchange, {})
        return result_message(request.id, self.finish_result(request.method, created, retried=False))

    async def handle(self, request: Request, exchange: Exchange) -> dict[str, Any]:
        """Serve one admitted modern request: an MRTR round ends in ``input_required``."""
        assert isinstance(exchange, ModernExchange)
        if request.method == "server/discover":
            return result_message(request.id, self.finish_result(request.method, self.discover(), retried=False))
        if request.method in TASK_METHODS:
            if self.tasks is None:
                return error_message(request.id, method_not_found(request.method).to_error())
            return await self.tasks.handle(request, exchange)
        if request.method in MRTR_METHODS:
            try:
                exchange.load_inputs()
            except MCPError as exc:
                return error_message(request.id, exc.to_error())
        if request.method == "tools/call":
            decided = await self.task_decision(request, exchange)
            if decided is not None:
                return decided
        try:
            response = await self.dispatcher.handle(request, exchange)
        except BeginTask as signal:
            assert self.tasks is not None
            created = await self.tasks.create(request, exchange, signal.answers())
            return result_message(request.id, self.finish_result(request.method, created, retried=False))
        except InputRequired as signal:
            try:
                result = signal.exchange.input_required_result()
            except (TypeError, ValueError):
                logger.exception("mcp_sse: ctx.request_state of %s is not JSON-serialisable", request.method)
                return error_message(request.id, {"code": INTERNAL_ERROR, "message": "Internal error"})
            result["_meta"] = {versions.META_SERVER_INFO: self.dispatcher.server_info()}
            return result_message(request.id, result)
        completed = response.get("result")
        if isinstance(completed, dict):
            response["result"] = self.finish_result(request.method, completed, retried=exchange.retried)
        return response


def is_stateless(message: Message, *, batch: bool, session_header: str, version_header: str) -> bool:
    """Whether a POSTed message belongs to the 2026-07-28 era.

    2026 requests carry their version in ``_meta``; one lacking ``_meta`` is still modern when it
    names a modern MCP-Protocol-Version outside any session (it then fails admission)."""
    if batch or not isinstance(message, Request | Notification):
        return False
    if versions.is_modern_request(message.params):
        return True
    return message.method != "initialize" and not session_header and version_header.strip() in versions.MODERN_VERSIONS
