"""The 2026-07-28 ("modern", stateless) protocol on top of the dispatcher.

Every modern request stands alone: its ``_meta`` names the protocol version and the client's
capabilities, its headers mirror the body, and anything the server needs from the client comes
back through MRTR (an ``input_required`` result the client answers by retrying the request with
``inputResponses``) instead of a server-to-client request.

Tool code does not change between eras: ``ctx.elicit()`` / ``ctx.sample()`` / ``ctx.list_roots()``
reach :meth:`ModernExchange.request`, which returns the client's answer when the retry carries
it and otherwise ends the call with :class:`InputRequired`. The tool runs again from the top on
the retry (it must tolerate being re-run up to its questions); earlier answers and whatever the
tool keeps in ``ctx.request_state`` travel in an HMAC-signed ``requestState`` bound to the
caller, the request and an expiry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core import signing

from .. import access
from ..conf import mcp_settings
from ..context import LOG_LEVELS, Caller, RequestInfo
from ..protocol import headers as mirrored
from ..protocol import versions
from ..protocol.errors import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
    MCPError,
)
from ..protocol.jsonrpc import Request, error_message, notification_message, result_message
from .exchange import REQUIRED_CAPABILITY, Exchange

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger("mcp_sse")

TRANSPORT_NAME = "stateless"

# Methods a modern server serves; everything else (initialize, ping, logging/setLevel,
# resources/subscribe, resources/unsubscribe, unknown names) is "method not found" (HTTP 404).
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
    }
)
# Results that carry caching hints (SEP-2549).
CACHEABLE_METHODS = frozenset(
    {"server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
# The only requests that may answer "input_required" (SEP-2322).
MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})

REQUEST_STATE_SALT = "mcp_sse.modern.request_state"
REQUEST_STATE_MAX_CHARS = 256 * 1024
STATE_FORMAT = 1


# -- errors that decide the HTTP status ------------------------------------------------------
class Rejected(Exception):
    """A request refused before it is served: the HTTP status and the JSON-RPC error."""

    def __init__(self, status: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


def http_status(response: Mapping[str, Any]) -> int:
    """The HTTP status of a JSON response: 400 for the modern protocol errors, 404 for an
    unknown method, 200 for results and ordinary JSON-RPC errors."""
    error = response.get("error")
    if not isinstance(error, Mapping):
        return 200
    code = error.get("code")
    if code in (HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION):
        return 400
    if code == METHOD_NOT_FOUND:
        return 404
    return 200


# -- per-request metadata ------------------------------------------------------------------
@dataclass
class RequestMeta:
    protocol_version: str
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] = field(default_factory=dict)
    log_level: str | None = None
    progress_token: Any = None


def parse_meta(params: Mapping[str, Any]) -> RequestMeta:
    """The ``_meta`` every modern request carries; :class:`Rejected` (400, -32602) if invalid."""
    meta = params.get("_meta")
    if not isinstance(meta, Mapping):
        raise Rejected(400, INVALID_PARAMS, "Invalid params: a modern request needs params._meta")
    version = meta.get(versions.META_PROTOCOL_VERSION)
    if not isinstance(version, str) or not version:
        raise Rejected(400, INVALID_PARAMS, f"Invalid params: _meta needs {versions.META_PROTOCOL_VERSION!r}")
    capabilities = meta.get(versions.META_CLIENT_CAPABILITIES)
    if not isinstance(capabilities, Mapping):
        raise Rejected(
            400, INVALID_PARAMS, f"Invalid params: _meta needs {versions.META_CLIENT_CAPABILITIES!r} (an object)"
        )
    client_info = meta.get(versions.META_CLIENT_INFO)
    if client_info is not None and not isinstance(client_info, Mapping):
        raise Rejected(400, INVALID_PARAMS, f"Invalid params: {versions.META_CLIENT_INFO!r} must be an object")
    log_level = meta.get(versions.META_LOG_LEVEL)
    if log_level is not None and log_level not in LOG_LEVELS:
        raise Rejected(
            400,
            INVALID_PARAMS,
            f"Invalid params: {versions.META_LOG_LEVEL!r} must be one of {', '.join(LOG_LEVELS)}",
        )
    token = meta.get("progressToken")
    if token is not None and (not isinstance(token, str | int) or isinstance(token, bool)):
        raise Rejected(400, INVALID_PARAMS, "Invalid params: progressToken must be a string or an integer")
    return RequestMeta(
        protocol_version=version,
        client_capabilities=dict(capabilities),
        client_info=dict(client_info or {}),
        log_level=log_level,
        progress_token=token,
    )


def supported_versions() -> list[str]:
    """Every revision this server speaks, newest first (it is dual-era)."""
    return list(reversed(versions.ALL_VERSIONS))


def validate(
    request: Request, header_pairs: Iterable[tuple[str, str]], dispatcher: Dispatcher
) -> tuple[RequestMeta, dict[str, str]]:
    """Everything checked before a modern request is served, in the spec's order of concerns:
    ``_meta`` (-32602), header/body agreement (-32020), the version (-32022), the method (404),
    then the headers mirroring names and tool arguments (-32020)."""
    meta = parse_meta(request.params)
    try:
        headers = mirrored.collect(header_pairs)
        mirrored.check_protocol_version(headers, meta.protocol_version)
    except mirrored.HeaderMismatch as exc:
        raise Rejected(400, HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
    if meta.protocol_version not in versions.MODERN_VERSIONS:
        raise Rejected(
            400,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported protocol version: {meta.protocol_version}",
            {"supported": supported_versions(), "requested": meta.protocol_version},
        )
    try:
        mirrored.check_method_and_name(headers, request.method, request.params)
    except mirrored.HeaderMismatch as exc:
        raise Rejected(400, HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
    if request.method not in MODERN_METHODS:
        raise Rejected(404, METHOD_NOT_FOUND, f"Method not found: {request.method}")
    if request.method == "tools/call":
        name = request.params.get("name")
        tool = dispatcher.registry.tools.get(name) if isinstance(name, str) else None
        arguments = request.params.get("arguments")
        if tool is not None and isinstance(arguments, Mapping | None):
            try:
                mirrored.check_parameter_headers(headers, tool.input_schema, arguments or {})
            except mirrored.HeaderMismatch as exc:
                raise Rejected(400, HEADER_MISMATCH, f"Header mismatch: {exc.message}") from None
    return meta, headers


# -- MRTR: input requests, responses and request state ---------------------------------------
class InputRequired(BaseException):
    """Ends a modern call that needs answers from the client.

    A BaseException so that ``except Exception`` in tool code (and the dispatcher's "tool
    failed" handler) lets it through: it is not a failure.
    """

    def __init__(self, exchange: ModernExchange) -> None:
        super().__init__("input required")
        self.exchange = exchange

    def summary(self) -> dict[str, Any]:
        """What the call log keeps of this round: the questions, not the state."""
        return {"resultType": "input_required", "inputRequests": sorted(self.exchange.input_requests)}


def _digest(method: str, params: Mapping[str, Any]) -> str:
    """Identifies the originating request: method, name/uri and arguments (canonical JSON)."""
    subject = {
        "method": method,
        "name": params.get("name"),
        "uri": params.get("uri"),
        "arguments": params.get("arguments"),
    }
    canonical = json.dumps(subject, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sign_request_state(payload: dict[str, Any]) -> str:
    """An opaque, HMAC-protected token (SECRET_KEY-derived key, timestamped) for ``payload``."""
    return signing.dumps(payload, salt=REQUEST_STATE_SALT, compress=True)


def load_request_state(token: Any, *, principal: str, method: str, digest: str) -> dict[str, Any]:
    """Verify an echoed ``requestState``; any failure is -32602 (the client must start over)."""
    if not isinstance(token, str) or not token or len(token) > REQUEST_STATE_MAX_CHARS:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState must be the string this server returned")
    try:
        payload = signing.loads(token, salt=REQUEST_STATE_SALT, max_age=int(mcp_settings.REQUEST_STATE_TTL))
    except signing.SignatureExpired:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState has expired; retry without it") from None
    except signing.BadSignature:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState failed its integrity check") from None
    if not isinstance(payload, dict) or payload.get("v") != STATE_FORMAT:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState is not understood by this server")
    if payload.get("p") != principal:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState belongs to another caller")
    if payload.get("m") != method or payload.get("d") != digest:
        raise MCPError(INVALID_PARAMS, "Invalid params: requestState was issued for a different request")
    answers = payload.get("a")
    state = payload.get("s")
    return {"answers": answers if isinstance(answers, dict) else {}, "state": state if isinstance(state, dict) else {}}


def _check_answer(key: str, method: str, answer: Any) -> dict[str, Any]:
    """Light shape checks of one input response (a wrong shape is a protocol error)."""
    if not isinstance(answer, dict):
        raise MCPError(INVALID_PARAMS, f"Invalid params: inputResponses[{key!r}] must be an object")
    if method == "elicitation/create" and answer.get("action") not in ("accept", "decline", "cancel"):
        raise MCPError(
            INVALID_PARAMS, f"Invalid params: inputResponses[{key!r}] needs action accept, decline or cancel"
        )
    if method == "sampling/createMessage" and not isinstance(answer.get("content"), dict | list):
        raise MCPError(INVALID_PARAMS, f"Invalid params: inputResponses[{key!r}] needs the sampled content")
    if method == "roots/list" and not isinstance(answer.get("roots"), list):
        raise MCPError(INVALID_PARAMS, f"Invalid params: inputResponses[{key!r}] needs a roots list")
    return answer


class ModernExchange(Exchange):
    """An exchange for one modern request: no server-to-client requests, MRTR instead."""

    def __init__(
        self,
        *,
        caller: Caller,
        info: RequestInfo,
        emit: Callable[[dict[str, Any]], Awaitable[None]] | None,
        meta: RequestMeta,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(caller=caller, info=info, emit=emit, log_level=meta.log_level, modern=True)
        self.meta = meta
        self.params = params
        self.input_responses: dict[str, Any] = {}
        self.remembered: dict[str, Any] = {}
        # What the tool keeps across rounds (``ctx.request_state``).
        self.request_state: dict[str, Any] = {}
        self.input_requests: dict[str, dict[str, Any]] = {}
        self.used_answers: dict[str, Any] = {}
        self.retried = False
        self._numbered = 0

    def load_inputs(self) -> None:
        """Take ``inputResponses`` / ``requestState`` from a retry (MRTR methods only)."""
        params = self.params
        if "inputResponses" in params:
            responses = params["inputResponses"]
            if not isinstance(responses, dict):
                raise MCPError(INVALID_PARAMS, "Invalid params: inputResponses must be an object")
            self.input_responses = responses
            self.retried = True
        if "requestState" in params:
            loaded = load_request_state(
                params["requestState"],
                principal=self.caller.principal_key,
                method=self.info.method,
                digest=_digest(self.info.method, params),
            )
            self.remembered = loaded["answers"]
            self.request_state.update(loaded["state"])
            self.retried = True

    async def request(self, method: str, params: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        capability = REQUIRED_CAPABILITY.get(method)
        if capability is None:
            raise MCPError(INTERNAL_ERROR, f"{method} cannot be asked of a client")
        if capability not in self.meta.client_capabilities:
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"This request needs the client capability '{capability}' ({method})",
                {"requiredCapabilities": {capability: {}}},
            )
        if self.info.method not in MRTR_METHODS:
            raise MCPError(INTERNAL_ERROR, f"{self.info.method} cannot ask the client for input")
        if key is None:
            key = f"input_{self._numbered}"
            self._numbered += 1
        if key in self.input_responses:
            answer = _check_answer(key, method, self.input_responses[key])
        elif key in self.remembered:
            answer = self.remembered[key]
        else:
            self.input_requests[key] = {"method": method, "params": params}
            raise InputRequired(self)
        self.used_answers[key] = answer
        return dict(answer)

    def input_required_result(self) -> dict[str, Any]:
        token = sign_request_state(
            {
                "v": STATE_FORMAT,
                "p": self.caller.principal_key,
                "m": self.info.method,
                "d": _digest(self.info.method, self.params),
                "a": self.used_answers,
                "s": self.request_state,
            }
        )
        return {"resultType": "input_required", "inputRequests": dict(self.input_requests), "requestState": token}


def build_exchange(
    caller: Caller,
    request: Request,
    meta: RequestMeta,
    *,
    remote_addr: str,
    emit: Callable[[dict[str, Any]], Awaitable[None]] | None,
) -> ModernExchange:
    client_info = meta.client_info
    info = RequestInfo(
        request_id=request.id,
        method=request.method,
        session_id=None,
        protocol_version=meta.protocol_version,
        transport=TRANSPORT_NAME,
        client_name=str(client_info.get("name") or ""),
        client_version=str(client_info.get("version") or ""),
        client_capabilities=meta.client_capabilities,
        remote_addr=remote_addr,
        progress_token=meta.progress_token,
    )
    return ModernExchange(caller=caller, info=info, emit=emit, meta=meta, params=request.params)


# -- serving ---------------------------------------------------------------------------------
def server_info(dispatcher: Dispatcher) -> dict[str, Any]:
    return dispatcher.server_info()


def cache_hints() -> dict[str, Any]:
    ttl = mcp_settings.CACHE_TTL_MS
    scope = mcp_settings.CACHE_SCOPE
    return {
        "ttlMs": ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 0 else 0,
        "cacheScope": scope if scope in ("public", "private") else "private",
    }


def finish_result(method: str, result: dict[str, Any], dispatcher: Dispatcher, *, retried: bool) -> dict[str, Any]:
    """Add what every modern result carries: ``resultType``, server identity, caching hints."""
    out = dict(result)
    out.setdefault("resultType", "complete")
    meta = dict(out.get("_meta") or {})
    meta[versions.META_SERVER_INFO] = server_info(dispatcher)
    out["_meta"] = meta
    if method in CACHEABLE_METHODS and out["resultType"] == "complete":
        hints = cache_hints()
        if retried:
            # A result computed from this client's answers must not be reused (SEP-2549).
            hints = {"ttlMs": 0, "cacheScope": "private"}
        out.update(hints)
    return out


def discover(dispatcher: Dispatcher) -> dict[str, Any]:
    result: dict[str, Any] = {
        "supportedVersions": supported_versions(),
        "capabilities": dispatcher.capabilities(),
    }
    if mcp_settings.INSTRUCTIONS:
        result["instructions"] = mcp_settings.INSTRUCTIONS
    return result


async def handle(request: Request, exchange: ModernExchange, dispatcher: Dispatcher) -> dict[str, Any]:
    """Serve one validated modern request; returns the JSON-RPC response message."""
    if request.method == "server/discover":
        return result_message(
            request.id, finish_result(request.method, discover(dispatcher), dispatcher, retried=False)
        )
    if request.method in MRTR_METHODS:
        try:
            exchange.load_inputs()
        except MCPError as exc:
            return error_message(request.id, exc.to_error())
    try:
        response = await dispatcher.handle(request, exchange)
    except InputRequired as signal:
        try:
            result = signal.exchange.input_required_result()
        except (TypeError, ValueError):
            logger.exception("mcp_sse: ctx.request_state of %s is not JSON-serialisable", request.method)
            return error_message(request.id, {"code": INTERNAL_ERROR, "message": "Internal error"})
        result["_meta"] = {versions.META_SERVER_INFO: server_info(dispatcher)}
        return result_message(request.id, result)
    completed = response.get("result")
    if isinstance(completed, dict):
        response["result"] = finish_result(request.method, completed, dispatcher, retried=exchange.retried)
    return response


# -- subscriptions/listen ----------------------------------------------------------------------
LIST_FILTERS = {"toolsListChanged": "tools", "promptsListChanged": "prompts", "resourcesListChanged": "resources"}


@dataclass
class ListenFilter:
    """What one listen stream asked for and we agreed to send."""

    lists: set[str] = field(default_factory=set)  # "tools", "prompts", "resources"
    resources: list[str] = field(default_factory=list)

    def acknowledged(self) -> dict[str, Any]:
        honoured: dict[str, Any] = {name: True for name, kind in LIST_FILTERS.items() if kind in self.lists}
        if self.resources:
            honoured["resourceSubscriptions"] = list(self.resources)
        return honoured


async def listen_filter(params: Mapping[str, Any], caller: Caller, dispatcher: Dispatcher) -> ListenFilter:
    """The honoured subset of a listen request's ``notifications`` (-32602 when malformed).

    List changes are honoured for every kind the server has a capability for; resource
    subscriptions for URIs that name a resource (or template match) the caller may read.
    """
    requested = params.get("notifications")
    if not isinstance(requested, Mapping):
        raise MCPError(INVALID_PARAMS, "Invalid params: subscriptions/listen needs a 'notifications' object")
    capabilities = dispatcher.capabilities()
    chosen = ListenFilter()
    for name, kind in LIST_FILTERS.items():
        value = requested.get(name)
        if value is not None and not isinstance(value, bool):
            raise MCPError(INVALID_PARAMS, f"Invalid params: notifications.{name} must be a boolean")
        if value and (capabilities.get(kind) or {}).get("listChanged"):
            chosen.lists.add(kind)
    uris = requested.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise MCPError(INVALID_PARAMS, "Invalid params: notifications.resourceSubscriptions must be a list of URIs")
        if (capabilities.get("resources") or {}).get("subscribe"):
            rules = await access.visibility()
            for uri in dict.fromkeys(uris):
                if _readable(uri, rules, caller, dispatcher):
                    chosen.resources.append(uri)
    return chosen


def _readable(uri: str, rules: dict[str, Any], caller: Caller, dispatcher: Dispatcher) -> bool:
    registry = dispatcher.registry
    if uri in registry.resources:
        return access.is_visible(rules, caller, "resource", uri)
    found = registry.find_template(uri)
    return found is not None and access.is_visible(rules, caller, "template", found[0].uri_template)


def listen_notification(
    message: Mapping[str, Any], chosen: ListenFilter, subscription_id: Any
) -> dict[str, Any] | None:
    """The notification a broadcast becomes on one listen stream, or None if not asked for."""
    kind = message.get("type")
    tag = {versions.META_SUBSCRIPTION_ID: subscription_id}
    if kind == "mcp.list_changed" and message.get("kind") in chosen.lists:
        return notification_message(f"notifications/{message['kind']}/list_changed", {"_meta": tag})
    if kind == "mcp.resource_updated" and message.get("uri") in chosen.resources:
        return notification_message("notifications/resources/updated", {"uri": message["uri"], "_meta": tag})
    return None


def acknowledgement(chosen: ListenFilter, subscription_id: Any) -> dict[str, Any]:
    return notification_message(
        "notifications/subscriptions/acknowledged",
        {"notifications": chosen.acknowledged(), "_meta": {versions.META_SUBSCRIPTION_ID: subscription_id}},
    )


def listen_closed(subscription_id: Any, dispatcher: Dispatcher) -> dict[str, Any]:
    """The response that ends a listen stream gracefully (server shutdown, operator request)."""
    return result_message(
        subscription_id,
        {
            "resultType": "complete",
            "_meta": {
                versions.META_SUBSCRIPTION_ID: subscription_id,
                versions.META_SERVER_INFO: server_info(dispatcher),
            },
        },
    )


# Broadcast that ends every listen stream on every worker gracefully (e.g. before a deploy).
LISTEN_END = "mcp.listen.end"


async def end_listen_streams() -> None:
    """Ask every worker to close its ``subscriptions/listen`` streams with a final response."""
    from ..notify import broadcast

    await broadcast({"type": LISTEN_END})
