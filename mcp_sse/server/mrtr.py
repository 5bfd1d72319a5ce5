"""MRTR (2026-07-28): what a modern request does instead of asking the client mid-call.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core import signing

from ..conf import mcp_settings
from ..context import Caller, RequestInfo
from ..protocol.errors import INTERNAL_ERROR, INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY, MCPError, echo
from .exchange import REQUIRED_CAPABILITY, Exchange, Port

# The only requests that may answer "input_required" (SEP-2322).
MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})

REQUEST_STATE_SALT = "mcp_sse.modern.request_state"
REQUEST_STATE_MAX_CHARS = 256 * 1024
STATE_FORMAT = 1


@dataclass(frozen=True)
class RequestMeta:
    """The ``_meta`` every modern request carries (validated by the stateless era)."""

    protocol_version: str
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] = field(default_factory=dict)
    log_level: str | None = None
    progress_token: Any = None


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


class BeginTask(BaseException):
    """Ends the synchronous part of a call that becomes a task (``ctx.begin_task()``): the
    answers gathered so far go to the task, which runs the tool again with them."""

    def __init__(self, exchange: ModernExchange) -> None:
        super().__init__("task begins")
        self.exchange = exchange

    def answers(self) -> dict[str, Any]:
        return {**self.exchange.remembered, **self.exchange.used_answers}


def _digest(method: str, params: Mapping[str, Any]) -> str:
    """Identifies the originating request: method, name/uri and arguments (canonical JSON)."""
    subject = {
        "method": method,
        "name": params.get("name"),
        "uri": params.get("uri"),
        "arguments": params.get("arguments"),
    }
    canonical = json.dumps(subject, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    # surrogatepass: arguments may hold a lone surrogate (a "\ud800" escape); only hashed here.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


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


def check_answer(key: str, method: str, answer: Any) -> dict[str, Any]:
    """Light shape checks of one input response (a wrong shape is a protocol error)."""
    if not isinstance(answer, dict):
        raise MCPError(INVALID_PARAMS, f"Invalid params: inputResponses[{echo(key, quoted=True)}] must be an object")
    if method == "elicitation/create" and answer.get("action") not in ("accept", "decline", "cancel"):
        raise MCPError(
            INVALID_PARAMS,
            f"Invalid params: inputResponses[{echo(key, quoted=True)}] needs action accept, decline or cancel",
        )
    if method == "sampling/createMessage" and not isinstance(answer.get("content"), dict | list):
        raise MCPError(
            INVALID_PARAMS, f"Invalid params: inputResponses[{echo(key, quoted=True)}] needs the sampled content"
        )
    if method == "roots/list" and not isinstance(answer.get("roots"), list):
        raise MCPError(INVALID_PARAMS, f"Invalid params: inputResponses[{echo(key, quoted=True)}] needs a roots list")
    return answer


class ModernExchange(Exchange):
    """An exchange for one modern request: no server-to-client requests, MRTR instead."""

    def __init__(
        self,
        *,
        caller: Caller,
        info: RequestInfo,
        port: Port,
        meta: RequestMeta,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(caller=caller, info=info, port=port, log_level=meta.log_level, modern=True)
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
        # Set when this call will become a task at ctx.begin_task() (a task-capable tool called
        # by a client that declared the tasks extension).
        self.task_gate = False

    async def begin_task(self) -> None:
        if self.task_gate:
            raise BeginTask(self)

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
            answer = check_answer(key, method, self.input_responses[key])
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
