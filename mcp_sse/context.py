"""What a running tool, resource or prompt sees: the caller, and a line back to the client.

A function tool that declares a ``ctx`` parameter receives a :class:`Context` (async tools) or a
:class:`SyncContext` (sync tools, which run in a worker thread). Both expose the caller and let
the tool report progress, log, ask the client (sampling, elicitation, roots) and notice
cancellation. The transport-specific plumbing is behind :class:`ClientLink`, implemented by the
server layer, so this module knows nothing of HTTP or sessions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from asgiref.sync import async_to_sync

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class ClientLink(Protocol):
    """The server layer's side of a context: how messages reach this request's client."""

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    async def request(self, method: str, params: dict[str, Any], *, key: str | None = None) -> dict[str, Any]: ...

    def wants_log(self, level: str) -> bool: ...

    async def close_stream(self) -> None: ...

    async def begin_task(self) -> None: ...

    @property
    def cancelled(self) -> bool:
        """Whether the client cancelled the request (set by the server layer)."""
        ...


class CancelledByClient(Exception):
    """Raised by :meth:`Context.raise_if_cancelled` once the client cancelled the request."""


@dataclass
class Caller:
    """Who is calling: resolved by authentication before any tool runs."""

    user_id: int | None = None
    username: str = ""
    token_id: int | None = None
    token_name: str = ""
    is_superuser: bool = False
    allowed_tools: frozenset[str] | None = None  # None: no per-token restriction
    rate_limit: int | None = None  # calls per minute, None: unlimited
    # OAuth: the scopes the token grants (None: not an OAuth token, no scope rules apply) and
    # the OAuth client it was issued to.
    scopes: frozenset[str] | None = None
    oauth_client: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def principal_key(self) -> str:
        """Sessions and request state are bound to this string."""
        if self.token_id is not None:
            return f"token:{self.token_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return "anonymous"

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def has_perm(self, permission: str) -> bool:
        """Django permission check from what authentication resolved (no query)."""
        if self.is_superuser:
            return True
        perms = self.extra.get("perms") or ()
        return permission in perms

    async def aget_user(self) -> Any:
        """The Django user object (``AnonymousUser`` when unauthenticated), fetched on demand."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        if self.user_id is None:
            return AnonymousUser()
        cached = self.extra.get("user")
        if cached is None:
            cached = await get_user_model()._default_manager.aget(pk=self.user_id)
            self.extra["user"] = cached
        return cached


@dataclass
class RequestInfo:
    """Facts about the request being served."""

    request_id: Any = None
    method: str = ""
    session_id: str | None = None
    protocol_version: str = ""
    transport: str = ""  # "streamable-http", "sse", "stateless"
    client_name: str = ""
    client_version: str = ""
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    remote_addr: str = ""
    progress_token: Any = None
    remote_port: int | None = None
    http_version: str = ""  # of the HTTP request that brought it ("1.1", "2")


class Context:
    """Handed to async tools; every client-facing method is a coroutine."""

    def __init__(self, caller: Caller, info: RequestInfo, link: ClientLink | None) -> None:
        self.caller = caller
        self.request_info = info
        self._link = link
        # A plain flag, not a threading.Event (a lock and a condition per call): sync tools in
        # other threads only ever read it, and an attribute read or write is atomic.
        self._cancelled = False
        self._last_progress: float | None = None
        # Whatever the tool wants to keep between input_required rounds (2026-07-28): the
        # server signs it into requestState and hands it back on the retry. Per call otherwise.
        shared = getattr(link, "request_state", None)
        self.request_state: dict[str, Any] = shared if isinstance(shared, dict) else {}

    # -- who and what -------------------------------------------------------------------
    @property
    def user_id(self) -> int | None:
        return self.caller.user_id

    @property
    def request_id(self) -> Any:
        return self.request_info.request_id

    @property
    def session_id(self) -> str | None:
        return self.request_info.session_id

    async def get_user(self) -> Any:
        return await self.caller.aget_user()

    # -- cancellation -------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        # Plain reads, no lock: sync tools in other threads only read these flags.
        return self._cancelled or (self._link is not None and self._link.cancelled)

    def mark_cancelled(self) -> None:
        self._cancelled = True

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledByClient("the client cancelled this request")

    # -- talking to the client ----------------------------------------------------------
    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Send ``notifications/progress`` if the client asked for progress (gave a token).

        Progress must increase; a value not above the last one sent is dropped, not sent.
        """
        token = self.request_info.progress_token
        if token is None or self._link is None:
            return
        if self._last_progress is not None and progress <= self._last_progress:
            return
        self._last_progress = progress
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._link.notify("notifications/progress", params)

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """Send ``notifications/message`` when the client's log level lets it through."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        if self._link is None or not self._link.wants_log(level):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger:
            params["logger"] = logger
        await self._link.notify("notifications/message", params)

    async def debug(self, data: Any) -> None:
        await self.log("debug", data)

    async def info(self, data: Any) -> None:
        await self.log("info", data)

    async def warning(self, data: Any) -> None:
        await self.log("warning", data)

    async def error(self, data: Any) -> None:
        await self.log("error", data)

    async def close_sse_stream(self) -> None:
        """Drop this request's SSE connection now; the client reconnects with ``Last-Event-ID``
        and receives what follows (2025-11-25 "SSE polling"). Frees the connection during long
        work. A no-op on transports and revisions without resumable streams."""
        if self._link is not None:
            await self._link.close_stream()

    async def begin_task(self) -> None:
        """Where a task begins, for tools registered with ``task=`` that first ask the client
        something (2026-07-28). Questions before this point are answered in the call's own
        input-required rounds; the call becomes a task here, and the client polls for the rest.
        Elsewhere (inline calls, older revisions, a task already running) it does nothing."""
        if self._link is not None:
            await self._link.begin_task()

    async def request(self, method: str, params: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        """Ask the client something and wait for its answer (or raise on error/timeout).

        ``key`` names the question in the 2026 input-required flow; by default questions are
        numbered in the order the tool asks them.
        """
        if self._link is None:
            raise RuntimeError("this context has no client connection")
        return await self._link.request(method, params, key=key)

    async def elicit(self, message: str, requested_schema: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        """``elicitation/create`` (form mode); returns ``{"action": ..., "content": {...}}``."""
        return await self.request(
            "elicitation/create", {"message": message, "requestedSchema": requested_schema}, key=key
        )

    async def sample(
        self,
        messages: list[dict[str, Any]] | str,
        *,
        max_tokens: int = 256,
        system_prompt: str | None = None,
        key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """``sampling/createMessage``; a plain string becomes one user text message."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
        params: dict[str, Any] = {"messages": messages, "maxTokens": max_tokens, **extra}
        if system_prompt is not None:
            params["systemPrompt"] = system_prompt
        return await self.request("sampling/createMessage", params, key=key)

    async def list_roots(self, *, key: str | None = None) -> list[dict[str, Any]]:
        result = await self.request("roots/list", {}, key=key)
        roots = result.get("roots", [])
        return roots if isinstance(roots, list) else []


class SyncContext:
    """The same surface for sync tools running in a worker thread: blocking calls."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self.caller = context.caller
        self.request_info = context.request_info
        self.request_state = context.request_state

    def _blocking(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        return async_to_sync(func)

    @property
    def user_id(self) -> int | None:
        return self.caller.user_id

    @property
    def request_id(self) -> Any:
        return self.request_info.request_id

    @property
    def session_id(self) -> str | None:
        return self.request_info.session_id

    @property
    def cancelled(self) -> bool:
        return self._context.cancelled

    def raise_if_cancelled(self) -> None:
        self._context.raise_if_cancelled()

    def get_user(self) -> Any:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        if self.caller.user_id is None:
            return AnonymousUser()
        return get_user_model()._default_manager.get(pk=self.caller.user_id)

    def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        self._blocking(self._context.report_progress)(progress, total, message)

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        self._blocking(self._context.log)(level, data, logger)

    def info_log(self, data: Any) -> None:
        self.log("info", data)

    def elicit(self, message: str, requested_schema: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        return self._blocking(self._context.elicit)(message, requested_schema, key=key)

    def sample(self, messages: list[dict[str, Any]] | str, **kwargs: Any) -> dict[str, Any]:
        return self._blocking(self._context.sample)(messages, **kwargs)

    def list_roots(self, *, key: str | None = None) -> list[dict[str, Any]]:
        return self._blocking(self._context.list_roots)(key=key)
