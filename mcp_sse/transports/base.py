"""The consumer base shared by the MCP endpoints.

Why not ``AsyncHttpConsumer``: it ends the response when ``handle()`` returns and runs its
handlers one at a time, so a long stream cannot also notice ``http.disconnect`` or channel-layer
messages (django/channels #1302, #1747). This base reads the request itself, runs the work in
tasks, and joins the channel layer only when something must be able to reach it (a held stream,
a tool waiting for the client): a plain JSON request never touches the layer.
It also skips Channels' per-message "close old DB connections" thread hop: ORM work happens
in ``database_sync_to_async``, which does that itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from ..access import RateLimited, check_rate_limit
from ..auth import AuthenticationFailed, authenticate
from ..auth.oauth import (
    bearer_challenge,
    canonical_resource,
    missing_scopes,
    oauth_enabled,
    required_scopes,
    token_in_query,
)
from ..conf import mcp_settings
from ..context import Caller
from ..protocol import jsonutil, sse
from ..protocol.errors import INTERNAL_ERROR, INVALID_REQUEST, echo, unavailable
from ..server.drain import install_under_twisted
from ..store import is_outage
from .status import retry_after_headers

if TYPE_CHECKING:
    from ..server.server import MCPServer

logger = logging.getLogger("mcp_sse")

# Seconds between re-joins of a held stream's channel-layer groups.
GROUP_RENEW_INTERVAL = 3600.0
# Retry-After of the 503 a draining worker answers new work with: at once, elsewhere.
DRAINING_RETRY_AFTER = 1

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


class ClientGone(Exception):
    """The client disconnected before we could answer."""


class HTTPError(Exception):
    """An HTTP-level refusal: status, JSON-RPC error body, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int = INVALID_REQUEST,
        request_id: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.request_id = request_id
        self.headers = headers or []
        self.data = data

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return jsonutil.dumps({"jsonrpc": "2.0", "id": self.request_id, "error": error})


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS``, or Django's localhost defaults while ``DEBUG`` is on."""

    def compute() -> list[str]:
        return list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])

    return mcp_settings.derived("allowed_hosts", compute)


# Distinct Host headers whose verdict is remembered (clients may send any; the memo stays small).
HOST_MEMO_LIMIT = 256


def host_allowed(host: str) -> bool:
    """Whether a Host header names an allowed host (remembered per header value until the
    settings change: a server sees the same one or two values on nearly every request)."""
    memo: dict[str, bool] = mcp_settings.derived("host_verdicts", dict)
    verdict = memo.get(host)
    if verdict is None:
        domain, _port = split_domain_port(host)
        verdict = bool(domain) and validate_host(domain, allowed_hosts())
        if len(memo) < HOST_MEMO_LIMIT:
            memo[host] = verdict
    return verdict


def allowed_origins() -> set[str] | None:
    """Origins allowed to call us; None means any (``ALLOWED_ORIGINS = "*"``)."""
    return mcp_settings.derived("allowed_origins", _compute_allowed_origins)


def _compute_allowed_origins() -> set[str] | None:
    configured = mcp_settings.ALLOWED_ORIGINS
    if configured == "*":
        return None
    if configured is not None:
        return {o.rstrip("/").lower() for o in configured}
    origins = {o.rstrip("/").lower() for o in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])}
    for host in allowed_hosts():
        if host == "*":
            continue
        origins.add(f"host:{host.lower()}")
    return origins


def origin_allowed(origin: str) -> bool:
    allowed = allowed_origins()
    if allowed is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    patterns = [a[5:] for a in allowed if a.startswith("host:")]
    return validate_host(host, patterns)


class HeldStream(Protocol):
    """What the consumer needs of the stream it holds (see :mod:`.streams`)."""

    def offer(self, message: dict[str, Any]) -> None: ...


def handler_name(message_type: Any) -> str | None:
    """Channels' convention: message ``type`` ``mcp.client.reply`` -> method ``mcp_client_reply``
    (only our own ``mcp.*`` types, so a message can never name an arbitrary method)."""
    if not isinstance(message_type, str) or not message_type.startswith("mcp."):
        return None
    return message_type.replace(".", "_")


class MCPConsumer(AsyncConsumer):
    """Reads the request, checks Host/Origin/auth, and manages lazy channel-layer membership.

    Channel-layer messages go to the consumer's method named by their ``type`` (as in Channels),
    else to the held stream's (see :class:`~mcp_sse.transports.streams.Stream`); others are
    ignored (broadcasts reach every stream, each takes what concerns it).
    """

    transport_name = ""

    def __init__(self, *, server: MCPServer) -> None:
        # The server object comes from as_asgi(server=...) (see mcp_sse.asgi / mcp_sse.routing).
        self.server = server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        install_under_twisted()  # the graceful stop under plain daphne (no lifespan)
        self.scope = scope
        self.base_send = send
        self._receive = receive
        self.channel_layer: Any = get_channel_layer(self.channel_layer_alias)
        self.channel_name = ""
        self._groups: set[str] = set()
        self._groups_renewed = time.monotonic()
        self._layer_task: asyncio.Task[None] | None = None
        self.response_started = False
        self.response_finished = False
        self.disconnected = asyncio.Event()
        self.stream: HeldStream | None = None
        self.outliving_work: asyncio.Task[Any] | None = None
        self._disconnect_watch: asyncio.Task[None] | None = None
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            await self.serve()
        except HTTPError as exc:
            await self.send_error(exc)
        except ClientGone:
            pass
        except asyncio.CancelledError:
            # Server shutdown (Daphne cancels every application): end an open stream properly so
            # clients see a clean end of stream and reconnect, not a truncated response.
            if self.response_started and not self.response_finished:
                with contextlib.suppress(Exception):
                    await self.finish_response()
            raise
        except Exception as exc:
            if is_outage(exc):
                # Redis is out: 503 + Retry-After before the response began; an open stream ends
                # (its client reconnects, and gets the 503 until Redis is back).
                logger.warning("mcp_sse: %s: the shared store is unavailable (%s)", type(self).__name__, exc)
                error = unavailable()
                refusal = HTTPError(503, error["message"], code=error["code"], data=error["data"])
                refusal.headers = retry_after_headers(503)
                await self.send_error(refusal)
            else:
                logger.exception("mcp_sse: unhandled error in %s", type(self).__name__)
                if not self.response_started:
                    await self.send_error(HTTPError(500, "Internal server error", code=-32603))
        finally:
            if self.outliving_work is not None and not self.outliving_work.done():
                # Work that outlives the connection still needs its groups; it cleans up itself.
                keep = self.server.requests.keep_running
                self.outliving_work.add_done_callback(lambda _t: keep(asyncio.ensure_future(self.leave_all())))
            else:
                await self.leave_all()

    async def serve(self) -> None:
        raise NotImplementedError

    # -- request ------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return str(self.scope.get("method", "GET")).upper()

    @property
    def remote_addr(self) -> str:
        client = self.scope.get("client") or ("", 0)
        return str(client[0] or "")

    @property
    def remote_port(self) -> int | None:
        client = self.scope.get("client") or ("", None)
        return client[1] if len(client) > 1 and isinstance(client[1], int) else None

    @property
    def http_version(self) -> str:
        return str(self.scope.get("http_version") or "")

    def check_host_and_origin(self) -> None:
        """DNS-rebinding protection: a bad Host gets 421, a foreign Origin 403."""
        host = self.headers.get("host", "")
        if not host_allowed(host):
            raise HTTPError(421, f"Host {echo(host, quoted=True)} is not allowed (see ALLOWED_HOSTS)")
        origin = self.headers.get("origin")
        if origin and origin != "null" and not origin_allowed(origin):
            raise HTTPError(403, f"Origin {echo(origin, quoted=True)} is not allowed (see MCP_SSE['ALLOWED_ORIGINS'])")
        if origin == "null":
            raise HTTPError(403, "Opaque origins are not allowed")

    async def authenticate(self) -> Caller:
        """The caller, or a 401 with ``WWW-Authenticate`` when credentials are bad or missing
        (naming the protected resource metadata when OAuth is on), or 403 ``insufficient_scope``."""
        if token_in_query(self.scope.get("query_string", b"")):
            # OAuth 2.1 section 5.2 / RFC 6750 section 2.3: never accept a token from a URL
            # (it ends up in logs and Referer headers); RFC 6750 names this invalid_request, 400.
            raise HTTPError(
                400,
                "Access tokens must be sent in the Authorization header, not in the query string",
                headers=[(b"www-authenticate", bearer_challenge(self.scope, error="invalid_request"))],
            )
        try:
            caller = await authenticate(self.headers, canonical_resource(self.scope) if oauth_enabled() else "")
        except AuthenticationFailed as exc:
            raise HTTPError(
                401,
                exc.message,
                headers=[(b"www-authenticate", bearer_challenge(self.scope, error=exc.error, description=exc.message))],
            ) from None
        if caller is None:
            if mcp_settings.REQUIRE_AUTH:
                raise HTTPError(
                    401,
                    "Authentication required: send 'Authorization: Bearer <token>'",
                    headers=[(b"www-authenticate", bearer_challenge(self.scope))],
                )
            caller = Caller()
        lacking = missing_scopes(caller.scopes)
        if lacking:
            raise HTTPError(
                403,
                f"Insufficient scope: the token lacks {' '.join(lacking)}",
                headers=[
                    (
                        b"www-authenticate",
                        bearer_challenge(self.scope, error="insufficient_scope", scopes=required_scopes()),
                    )
                ],
            )
        return caller

    def refuse_while_draining(self, request_id: Any = None) -> None:
        """New sessions, streams and requests on a stopping worker: 503 + Retry-After, so the
        load balancer or the client goes to another worker (see :mod:`mcp_sse.server.drain`)."""
        if self.server.requests.draining:
            raise HTTPError(
                503,
                "Service Unavailable: this server is shutting down, retry (another server will answer)",
                code=INTERNAL_ERROR,
                request_id=request_id,
                headers=[(b"retry-after", str(DRAINING_RETRY_AFTER).encode())],
            )

    async def enforce_rate_limit(self, caller: Caller, request_id: Any = None) -> None:
        """The token's calls-per-minute limit, shared by all workers: 429 with Retry-After."""
        try:
            await check_rate_limit(caller)
        except RateLimited as exc:
            raise HTTPError(
                429,
                "Too Many Requests: rate limit exceeded",
                request_id=request_id,
                headers=[(b"retry-after", str(exc.retry_after).encode())],
            ) from None

    async def read_body(self) -> bytes:
        limit = mcp_settings.MAX_BODY_SIZE
        declared = self.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPError(413, f"Request body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"Request body larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def watch_disconnect_in_background(self) -> None:
        """Start noticing ``http.disconnect`` (sets :attr:`disconnected`) while we stream."""
        if self._disconnect_watch is None:
            self._disconnect_watch = asyncio.ensure_future(self.watch_disconnect())

    def stop_disconnect_watch(self) -> None:
        if self._disconnect_watch is not None:
            self._disconnect_watch.cancel()
            self._disconnect_watch = None

    async def watch_disconnect(self) -> None:
        """Wait for ``http.disconnect`` (run as a task once the body has been read)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    # -- response -----------------------------------------------------------------------
    async def send_response(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        content_type: bytes | None = b"application/json",
    ) -> None:
        all_headers = list(headers or [])
        if content_type and body:
            all_headers.append((b"content-type", content_type))
        all_headers.append((b"content-length", str(len(body)).encode()))
        await self.start_response(status, all_headers)
        await self.finish_response(body)

    async def send_error(self, exc: HTTPError) -> None:
        if self.response_started:
            await self.finish_response()
            return
        await self.send_response(exc.status, exc.body(), exc.headers)

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.response_started = True
        await self.base_send({"type": "http.response.start", "status": status, "headers": headers})  # type: ignore[typeddict-item]

    async def start_sse(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await self.start_response(200, SSE_HEADERS + list(headers or []))

    async def write(self, data: bytes) -> bool:
        """Write part of the body; False if the client is gone or the response has ended."""
        if self.response_finished or self.disconnected.is_set():
            return False
        await self.base_send({"type": "http.response.body", "body": data, "more_body": True})
        return True

    async def write_event(
        self,
        message: dict[str, Any] | None,
        *,
        event: str | None = None,
        event_id: str | None = None,
        retry_ms: int | None = None,
    ) -> bool:
        data = "" if message is None else jsonutil.dumps_str(message)
        return await self.write(sse.encode_event(data, event=event, event_id=event_id, retry_ms=retry_ms))

    async def finish_response(self, body: bytes = b"") -> None:
        if self.response_finished:
            return
        self.response_finished = True
        if self.disconnected.is_set() and not body:
            return
        await self.base_send({"type": "http.response.body", "body": body, "more_body": False})

    # -- channel layer ------------------------------------------------------------------
    async def join(self, group: str) -> None:
        """Become reachable through ``group`` (creates our channel on first use)."""
        if self.channel_layer is None or group in self._groups:
            return
        if not self.channel_name:
            self.channel_name = await self.channel_layer.new_channel()
            self._layer_task = asyncio.create_task(self._pump_layer())
        await self.channel_layer.group_add(group, self.channel_name)
        self._groups.add(group)

    async def renew_groups(self) -> None:
        """Re-join our groups now and then: channel layers drop memberships older than their
        ``group_expiry`` (a day by default), which would silently cut off a long-held stream."""
        now = time.monotonic()
        if now - self._groups_renewed < GROUP_RENEW_INTERVAL or self.channel_layer is None:
            return
        self._groups_renewed = now
        for group in list(self._groups):
            await self.channel_layer.group_add(group, self.channel_name)

    async def leave(self, group: str) -> None:
        if self.channel_layer is not None and group in self._groups:
            self._groups.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def leave_all(self) -> None:
        for group in list(self._groups):
            try:
                await self.leave(group)
            except Exception:
                logger.exception("mcp_sse: could not leave group %s", group)
        if self._layer_task is not None:
            self._layer_task.cancel()
            self._layer_task = None

    async def _pump_layer(self) -> None:
        assert self.channel_layer is not None
        while True:
            message = await self.channel_layer.receive(self.channel_name)
            try:
                await self.on_layer_message(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("mcp_sse: error handling channel-layer message %s", message.get("type"))

    @property
    def layer_task(self) -> asyncio.Task[None] | None:
        """The task reading our channel (None until something joined a group)."""
        return self._layer_task

    async def on_layer_message(self, message: dict[str, Any]) -> None:
        name = handler_name(message.get("type"))
        handler = getattr(self, name, None) if name else None
        if handler is not None:
            await handler(message)
        elif self.stream is not None:
            self.stream.offer(message)
