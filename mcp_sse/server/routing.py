"""Channel-layer group names: how a message finds the consumer that must act on it.

Group names allow ASCII letters, digits, ``-``, ``_`` and ``.`` and must stay under 100
characters; session ids are URL-safe base64, so they fit as they are.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..notify import BROADCAST_GROUP
from ..protocol import jsonutil

__all__ = ["BROADCAST_GROUP"]


def request_token(request_id: Any) -> str:
    """A short, group-safe token for a client's request id (any string or integer)."""
    return hashlib.sha1(jsonutil.dumps(request_id), usedforsecurity=False).hexdigest()[:20]


def request_group(session_id: str, token: str) -> str:
    """The consumer serving one client request: receives the client's replies to our
    server-to-client requests and ``notifications/cancelled`` for it."""
    return f"mcp-rq.{session_id}.{token}"


def session_group(session_id: str) -> str:
    """The consumer holding the session's stream (legacy SSE stream or standalone GET)."""
    return f"mcp-s.{session_id}"


def stream_group(session_id: str, stream_id: str) -> str:
    """Live events of one resumable stream, for a client that resumed it on another worker."""
    return f"mcp-st.{session_id}.{stream_id}"


def cancel_key(session_id: str, token: str) -> str:
    return f"mcp_sse:cancelled:{session_id}:{token}"


def server_request_id(token: str, number: int) -> str:
    """Ids of server-to-client requests carry the token of the request they belong to, so
    the client's answer can be routed back to it from any worker."""
    return f"{token}-{number}"


def token_of_server_request(request_id: Any) -> str | None:
    if isinstance(request_id, str) and "-" in request_id:
        token = request_id.rsplit("-", 1)[0]
        if len(token) == 20 and all(c in "0123456789abcdef" for c in token):
            return token
    return None


# Leases (see :mod:`.leases`): which worker still produces something other workers wait on.
def stream_producer_lease(session_id: str, stream_id: str) -> str:
    """Held by the worker serving a POST whose response became a resumable stream."""
    return f"stream:{session_id}:{stream_id}"


def session_stream_lease(session_id: str) -> str:
    """Held by the worker holding a legacy session's ``/sse`` stream: POSTs for the session are
    served there, so once it is gone they have nowhere to go."""
    return f"sse:{session_id}"


def get_stream_lease(session_id: str) -> str:
    """Held by the worker holding a session's standalone GET stream (one at a time)."""
    return f"get-stream:{session_id}"
