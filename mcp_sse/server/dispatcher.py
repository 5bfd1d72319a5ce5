"""The dispatcher: maps each MCP method to its handler, for the era of the request.

This is the one place where exceptions become JSON-RPC errors. Handlers raise
:class:`MCPError` for protocol faults; tool failures are results with ``isError``; anything else
is logged with its traceback and answered with a generic internal error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .. import access
from ..audit import get_recorder
from ..conf import mcp_settings
from ..context import LOG_LEVELS, Context
from ..protocol import errors, versions
from ..protocol.errors import INVALID_PARAMS, MCPError, echo
from ..protocol.jsonrpc import Notification, Request, error_message, result_message
from ..registry.base import Registry, Tool, default_registry
from ..store import is_outage
from .exchange import ClientRequestError, Exchange, cut_short_error
from .mrtr import BeginTask, InputRequired
from .session import SessionStore

logger = logging.getLogger("mcp_sse")

Handler = Callable[[dict[str, Any], Exchange], Awaitable[dict[str, Any]]]

# Methods that are recorded in the call log.
LOGGED_METHODS = ("tools/call", "resources/read", "prompts/get")


def _listing(key: str, items: list[Any], cursor: Any) -> dict[str, Any]:
    """One page of a list result: ``{key: [definitions], "nextCursor"?}``."""
    page, next_cursor = _page(items, cursor)
    result: dict[str, Any] = {key: [item.definition() for item in page]}
    if next_cursor:
        result["nextCursor"] = next_cursor
    return result


def _page(items: list[Any], cursor: Any) -> tuple[list[Any], str | None]:
    """Opaque cursors: base64 of the offset. Invalid cursor -> -32602."""
    size = max(1, int(mcp_settings.PAGE_SIZE))
    offset = 0
    if cursor not in (None, ""):
        try:
            offset = int(base64.urlsafe_b64decode(str(cursor).encode()).decode())
            if offset < 0 or offset > len(items):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise errors.invalid_params(f"Invalid cursor: {echo(cursor, quoted=True)}") from None
    end = offset + size
    next_cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[offset:end], next_cursor


@dataclass
class CallOutcome:
    """What the call log records about one call (filled in while it runs)."""

    outcome: str = "ok"
    error: str = ""
    result: Any = None


class Dispatcher:
    def __init__(self, registry: Registry | None = None, sessions: SessionStore | None = None) -> None:
        self.registry = registry or default_registry
        self.sessions = sessions or SessionStore()
        self.handlers: dict[str, Handler] = {
            "initialize": self.initialize,
            "ping": self.ping,
            "tools/list": self.tools_list,
            "tools/call": self.tools_call,
            "resources/list": self.resources_list,
            "resources/templates/list": self.resource_templates_list,
            "resources/read": self.resources_read,
            "resources/subscribe": self.resources_subscribe,
            "resources/unsubscribe": self.resources_unsubscribe,
            "prompts/list": self.prompts_list,
            "prompts/get": self.prompts_get,
            "completion/complete": self.complete,
            "logging/setLevel": self.set_level,
        }

    # -- entry points -------------------------------------------------------------------
    async def handle(self, request: Request, exchange: Exchange) -> dict[str, Any]:
        """Serve one request; always returns a JSON-RPC response message, never raises
        (except ``CancelledError``, which the transport owns)."""
        handler = self.handlers.get(request.method)
        try:
            if handler is None:
                raise errors.method_not_found(request.method)
            result = await handler(request.params, exchange)
            return result_message(request.id, result)
        except MCPError as exc:
            return error_message(request.id, exc.to_error())
        except asyncio.CancelledError:
            if exchange.cut_short is None:
                raise
            # Cut off by its stopping worker: the client gets an error, not silence.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return error_message(request.id, cut_short_error(exchange.cut_short))
        except Exception as exc:
            if is_outage(exc):
                logger.warning("mcp_sse: %s not served: the shared store is unavailable (%s)", request.method, exc)
                return error_message(request.id, errors.unavailable())
            logger.exception("mcp_sse: internal error serving %s", request.method)
            return error_message(request.id, {"code": errors.INTERNAL_ERROR, "message": "Internal error"})

    async def handle_notification(self, note: Notification, exchange: Exchange) -> None:
        try:
            if note.method == "notifications/initialized" and exchange.session is not None:
                if not exchange.session.initialized:
                    exchange.session.initialized = True
                    await self.sessions.save(exchange.session)
            # cancelled / roots changes are routed by the transport (it knows the channel layer
            # plumbing); progress from the client has nothing to act on here.
        except Exception:
            logger.exception("mcp_sse: error handling notification %s", note.method)

    # -- lifecycle ----------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        return {
            "tools": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "prompts": {"listChanged": True},
            "logging": {},
            "completions": {},
        }

    def server_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": mcp_settings.SERVER_NAME, "version": mcp_settings.SERVER_VERSION}
        if mcp_settings.SERVER_TITLE:
            info["title"] = mcp_settings.SERVER_TITLE
        return info

    async def initialize(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise errors.invalid_params('initialize needs a "protocolVersion" string')
        version = versions.negotiate(requested)
        client_info = params.get("clientInfo") if isinstance(params.get("clientInfo"), dict) else {}
        capabilities = params.get("capabilities") if isinstance(params.get("capabilities"), dict) else {}
        session = exchange.session
        if session is None:
            session = await self.sessions.create(
                exchange.caller.principal_key,
                exchange.info.transport,
                protocol_version=version,
                client_info=client_info,
                client_capabilities=capabilities,
            )
            exchange.new_session = session
            exchange.session = session
        else:
            session.protocol_version = version
            session.client_info = client_info or {}
            session.client_capabilities = capabilities or {}
            await self.sessions.save(session)
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": self.server_info(),
        }
        if mcp_settings.INSTRUCTIONS:
            result["instructions"] = mcp_settings.INSTRUCTIONS
        return result

    async def ping(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        return {}

    async def set_level(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        level = params.get("level")
        if level not in LOG_LEVELS:
            raise errors.invalid_params(
                f"Unknown log level {echo(level, quoted=True)}; expected one of {', '.join(LOG_LEVELS)}"
            )
        if exchange.session is not None:
            exchange.session.log_level = level
            await self.sessions.save(exchange.session)
        return {}

    # -- tools --------------------------------------------------------------------------
    async def visible_tools(self, exchange: Exchange) -> list[Tool]:
        rules = await access.visibility()
        caller = exchange.caller
        return [
            t
            for t in self.registry.tools.values()
            if access.is_visible(rules, caller, t.kind, t.name, permission=t.required_permission)
        ]

    async def tools_list(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        tools = await self.visible_tools(exchange)
        return _listing("tools", tools, params.get("cursor"))

    async def find_tool(self, name: Any, exchange: Exchange) -> Tool:
        tool = self.registry.tools.get(name) if isinstance(name, str) else None
        # Not passing the tool's model permission here: a caller without it gets a tool error
        # that names the missing permission (the model tool checks it), not "unknown tool".
        if tool is None or not access.is_visible(await access.visibility(), exchange.caller, tool.kind, tool.name):
            raise errors.invalid_params(f"Unknown tool: {echo(name)}")
        return tool

    async def tools_call(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise errors.invalid_params('"arguments" must be an object')
        with self.recording("tools/call", str(name), exchange, arguments) as call:
            tool = await self.find_tool(name, exchange)
            ctx = self.context(exchange)
            try:
                call.result = await tool.run_call(arguments, ctx)
            except (MCPError, asyncio.CancelledError):
                raise
            except InputRequired as signal:
                call.result = signal.summary()  # 2026 MRTR round: logged as asked, not as failed
                call.outcome = "input_required"
                raise
            except BeginTask:
                call.result = {"resultType": "task"}  # the task's own run is logged when it ends
                raise
            except ClientRequestError as exc:
                call.result = {"content": [{"type": "text", "text": str(exc)}], "isError": True}
            except Exception as exc:
                logger.exception("mcp_sse: tool %r failed", name)
                detail = f": {type(exc).__name__}: {exc}" if settings.DEBUG else ""
                call.result = {"content": [{"type": "text", "text": f"Tool {name!r} failed{detail}"}], "isError": True}
                call.error = f"{type(exc).__name__}: {exc}"
            if call.result.get("isError"):
                call.outcome = "tool_error"
                call.error = call.error or _first_text(call.result)
            return call.result

    def context(self, exchange: Exchange) -> Context:
        return Context(exchange.caller, exchange.info, exchange)

    # -- resources ----------------------------------------------------------------------
    async def resources_list(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        rules = await access.visibility()
        items = [
            r for r in self.registry.resources.values() if access.is_visible(rules, exchange.caller, "resource", r.uri)
        ]
        return _listing("resources", items, params.get("cursor"))

    async def resource_templates_list(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        rules = await access.visibility()
        items = [
            t
            for t in self.registry.templates.values()
            if access.is_visible(rules, exchange.caller, "template", t.uri_template)
        ]
        return _listing("resourceTemplates", items, params.get("cursor"))

    def resource_not_found(self, uri: str, exchange: Exchange) -> MCPError:
        code = INVALID_PARAMS if exchange.modern else errors.RESOURCE_NOT_FOUND
        return MCPError(code, f"Resource not found: {echo(uri)}", {"uri": echo(uri)})

    async def resources_read(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise errors.invalid_params('resources/read needs a "uri" string')
        with self.recording("resources/read", uri, exchange, {"uri": uri}, keep_result=False):
            rules = await access.visibility()
            ctx = self.context(exchange)
            resource = self.registry.resources.get(uri)
            if resource is not None and access.is_visible(rules, exchange.caller, "resource", uri):
                contents = await resource.read(ctx)  # type: ignore[attr-defined]
            else:
                found = self.registry.find_template(uri)
                if found is None or not access.is_visible(rules, exchange.caller, "template", found[0].uri_template):
                    raise self.resource_not_found(uri, exchange)
                template, variables = found
                contents = await template.read(uri, variables, ctx)  # type: ignore[attr-defined]
            return {"contents": contents}

    async def resources_subscribe(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        uri = self._uri(params)
        session = exchange.session
        if session is not None and uri not in session.subscriptions:
            session.subscriptions.append(uri)
            await self.sessions.save(session)
        return {}

    async def resources_unsubscribe(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        uri = self._uri(params)
        session = exchange.session
        if session is not None and uri in session.subscriptions:
            session.subscriptions.remove(uri)
            await self.sessions.save(session)
        return {}

    def _uri(self, params: dict[str, Any]) -> str:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise errors.invalid_params('a "uri" string is required')
        return uri

    # -- prompts ------------------------------------------------------------------------
    async def prompts_list(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        rules = await access.visibility()
        items = [
            p for p in self.registry.prompts.values() if access.is_visible(rules, exchange.caller, "prompt", p.name)
        ]
        return _listing("prompts", items, params.get("cursor"))

    async def prompts_get(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        with self.recording("prompts/get", str(name), exchange, arguments, keep_result=False):
            prompt = self.registry.prompts.get(name) if isinstance(name, str) else None
            if prompt is None or not access.is_visible(
                await access.visibility(), exchange.caller, "prompt", prompt.name
            ):
                raise errors.invalid_params(f"Unknown prompt: {echo(name)}")
            if not isinstance(arguments, dict) or not all(isinstance(v, str) for v in arguments.values()):
                raise errors.invalid_params("prompt arguments must be an object of strings")
            missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
            if missing:
                raise errors.invalid_params(f"Missing required prompt arguments: {', '.join(missing)}")
            return await prompt.render(arguments, self.context(exchange))  # type: ignore[attr-defined]

    # -- completion ---------------------------------------------------------------------
    async def complete(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        ref = params.get("ref") or {}
        argument = params.get("argument") or {}
        if not isinstance(ref, dict) or not isinstance(argument, dict) or "name" not in argument:
            raise errors.invalid_params('completion/complete needs "ref" and "argument.name"')
        arg_name = str(argument.get("name"))
        value = str(argument.get("value", ""))
        context_args = (params.get("context") or {}).get("arguments") or {}
        source: Any = None
        if ref.get("type") == "ref/prompt":
            prompt = self.registry.prompts.get(str(ref.get("name")))
            if prompt is None:
                raise errors.invalid_params(f"Unknown prompt: {echo(ref.get('name'))}")
            source = prompt.completions.get(arg_name)
        elif ref.get("type") == "ref/resource":
            template = self.registry.templates.get(str(ref.get("uri")))
            if template is None:
                raise errors.invalid_params(f"Unknown resource template: {echo(ref.get('uri'))}")
            source = template.completions.get(arg_name)
        else:
            raise errors.invalid_params(f"Unknown reference type: {echo(ref.get('type'), quoted=True)}")
        if source is None:
            values: list[str] = []
        elif callable(source):
            produced = source(value, context_args)
            values = list(await produced if inspect.isawaitable(produced) else produced)
        else:
            values = [str(v) for v in source if str(v).startswith(value)]
        return {"completion": {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}}

    # -- call log -----------------------------------------------------------------------
    @contextlib.contextmanager
    def recording(
        self, method: str, name: str, exchange: Exchange, arguments: Any, *, keep_result: bool = True
    ) -> Iterator[CallOutcome]:
        """Record a tool call, resource read or prompt get in the call log, however it ends:
        the block sets ``result``/``outcome``/``error`` as it learns them."""
        call = CallOutcome()
        started = time.monotonic()
        try:
            yield call
        except MCPError as exc:
            unknown_tool = exc.code == INVALID_PARAMS and exc.message.startswith("Unknown tool")
            call.outcome, call.error = ("denied" if unknown_tool else "protocol_error"), exc.message
            raise
        except asyncio.CancelledError:
            call.outcome, call.error = "cancelled", exchange.cut_short or "cancelled by the client"
            raise
        finally:
            result = call.result if keep_result else None
            self.record(method, name, exchange, arguments, result, call.outcome, call.error, started)

    def record(
        self,
        method: str,
        name: str,
        exchange: Exchange,
        arguments: Any,
        result: Any,
        outcome: str,
        error_text: str,
        started: float,
    ) -> None:
        try:
            info = exchange.info
            get_recorder().record(
                {
                    "method": method,
                    "tool": name[:255],
                    "token_id": exchange.caller.token_id,
                    "user_id": exchange.caller.user_id,
                    "oauth_client": exchange.caller.oauth_client[:200],
                    "scopes": " ".join(sorted(exchange.caller.scopes or ()))[:500],
                    "session_id": info.session_id or "",
                    "transport": info.transport,
                    "protocol_version": info.protocol_version,
                    "client_name": info.client_name[:200],
                    "client_version": info.client_version[:100],
                    "remote_addr": info.remote_addr[:64],
                    "request_id": str(info.request_id)[:200],
                    "arguments": arguments,  # redacted and capped by the recorder, off the call path
                    "result": result,
                    "outcome": outcome,
                    "error": error_text[:4000],
                    "duration_ms": round((time.monotonic() - started) * 1000, 3),
                }
            )
        except Exception:
            logger.exception("mcp_sse: could not record a call log entry")


def _first_text(result: dict[str, Any]) -> str:
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))[:4000]
    return ""
