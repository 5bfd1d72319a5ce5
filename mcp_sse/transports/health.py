"""Health endpoints for load balancers and orchestrators: ``<prefix>/health/live`` and
``<prefix>/health/ready``.

*Liveness* says the process answers HTTP at all (no I/O: a slow database must not get a worker
restarted). *Readiness* says it should get new work: the database answers, the shared store
and the channel layer answer when they are out of process (Redis), and the process is not
draining (see :mod:`mcp_sse.server.drain`). A failed check is a 503 with a JSON body naming
what failed, so an operator reads the cause off the load balancer's log.

Neither endpoint authenticates, checks ``Host`` (probes use the node's address) or writes the
call log: they say nothing about tools or callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from ..protocol import jsonutil
from ..server.drain import is_draining
from ..store import shared_cache

# Each readiness check gets this long (seconds) before it counts as failed.
CHECK_TIMEOUT = 2.0
PROBE_KEY = "mcp_sse:health:probe"


def _ping_database() -> None:
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def check_database() -> None:
    await database_sync_to_async(_ping_database)()


async def check_store() -> None:
    store = shared_cache()
    await store.set(PROBE_KEY, 1, 10)
    if await store.get(PROBE_KEY) != 1:
        raise RuntimeError("the shared store did not return what was just written to it")


async def check_channel_layer() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    connection = getattr(layer, "connection", None)
    if connection is None:
        return  # in-process layer (InMemoryChannelLayer): nothing out of process to ask
    for index in range(getattr(layer, "ring_size", 1)):
        await connection(index).ping()


READINESS_CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "database": check_database,
    "store": check_store,
    "channel_layer": check_channel_layer,
}


async def _run_check(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"failed: no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # every failure is a "not ready", never a 500
        return f"failed: {type(exc).__name__}: {exc}"[:300]
    return "ok"


async def readiness() -> tuple[int, dict[str, Any]]:
    """The readiness verdict: (HTTP status, JSON body)."""
    names = list(READINESS_CHECKS)
    outcomes = await asyncio.gather(*(_run_check(READINESS_CHECKS[name]) for name in names))
    checks: dict[str, str] = dict(zip(names, outcomes, strict=True))
    draining = is_draining()
    checks["draining"] = "yes: this worker is stopping" if draining else "no"
    ready = not draining and all(outcome == "ok" for outcome in outcomes)
    return (200 if ready else 503), {"status": "ready" if ready else "unavailable", "checks": checks}


class HealthEndpoint:
    """A plain ASGI application answering GET/HEAD for one kind of probe (``live``/``ready``)."""

    def __init__(self, kind: str) -> None:
        if kind not in ("live", "ready"):
            raise ValueError(f"unknown health probe {kind!r}")
        self.kind = kind

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            status, body = 405, {"status": "error", "message": "Use GET or HEAD."}
            extra = [(b"allow", b"GET, HEAD")]
        elif self.kind == "live":
            status, body, extra = 200, {"status": "alive"}, []
        else:
            status, body = await readiness()
            extra = [(b"retry-after", b"5")] if status == 503 else []
        payload = jsonutil.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
