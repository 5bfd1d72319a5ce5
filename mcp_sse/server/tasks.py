"""Durable tasks: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663) on the 2026-07-28 wire.

A ``tools/call`` of a tool registered with ``task="optional"`` or ``"required"``, from a request
that declares the extension, answers with a ``CreateTaskResult`` instead of waiting for the tool:

* the :class:`~mcp_sse.models.Task` row is committed first, so ``tasks/get``, ``tasks/update``
  and ``tasks/cancel`` find it on any worker from the moment the client has the id;
* the call then runs on the worker that received it, detached from the HTTP request through
  the request lifecycle (key ``task:<id>``), holding a lease (:mod:`.leases`) while it runs;
* the tool's questions (``ctx.elicit()`` & co.) become ``TaskInput`` rows: the task reports
  ``input_required`` with them until ``tasks/update`` (on any worker) answers them all;
* ``tasks/cancel`` flags the row; the running worker sees the flag (it checks every
  :data:`WATCH_INTERVAL`) and cancels the tool; on the same worker it cancels at once;
* a ``working`` task whose lease expired belonged to a worker that died: it is reported
  ``failed`` (-32603) on the next read, within ``LEASE_SECONDS`` of the death.

Task ids are 256-bit random strings bound to the caller that created them: any other caller is
told the id is unknown (-32602), exactly as for an id that never existed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from ..conf import mcp_settings
from ..context import Caller, RequestInfo
from ..models import Task, TaskInput
from ..notify import broadcast
from ..protocol.errors import INTERNAL_ERROR, INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY, MCPError, echo
from ..protocol.jsonrpc import Request, error_message, result_message
from .eras import Era, declares_tasks, missing_extension
from .exchange import NO_PORT, REQUIRED_CAPABILITY, Exchange
from .leases import WORKER_ID, Lease, is_alive, worker_lost_error
from .mrtr import ModernExchange, RequestMeta, check_answer
from .requests import RequestLifecycle

logger = logging.getLogger("mcp_sse")

# Seconds between a running task's looks at its row (a cancel or answers from another worker).
WATCH_INTERVAL = 0.25
# Broadcast when a task's state changes: listen streams that listed it send notifications/tasks.
TASK_CHANGED = "mcp.task_changed"
LOST_WORKER_MESSAGE = "The worker running this task stopped before the task finished"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lease_name(task_id: str) -> str:
    return f"task:{task_id}"


def unknown_task(task_id: Any) -> MCPError:
    # The same answer for an id that never existed, has expired, or is another caller's.
    return MCPError(INVALID_PARAMS, f"Unknown task: {echo(task_id)}")


class TaskExchange(ModernExchange):
    """The exchange a task runs under: questions wait for ``tasks/update`` instead of ending the
    call, and nothing is streamed (task clients poll)."""

    def __init__(self, *, task_id: str, caller: Caller, info: RequestInfo, meta: RequestMeta, params: Any) -> None:
        super().__init__(caller=caller, info=info, port=NO_PORT, meta=meta, params=params)
        self.task_id = task_id
        self.announce: Callable[[str], Awaitable[None]] | None = None

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
        if key is None:
            key = f"input_{self._numbered}"
            self._numbered += 1
        if key in self.remembered:  # answered in the call's rounds before the task began
            return dict(self.remembered[key])
        _, asked = await TaskInput.objects.aget_or_create(
            task_id=self.task_id, key=key, defaults={"request": {"method": method, "params": params}}
        )
        if asked and self.announce is not None:
            await self.announce(self.task_id)  # the task is input_required now
        while True:
            rows = TaskInput.objects.filter(task_id=self.task_id, key=key)
            found = await rows.values_list("answer", flat=True).afirst()
            if found is not None:
                return dict(found)
            await asyncio.sleep(WATCH_INTERVAL)


class TaskRun(Era):
    """How a task's call is served: by the dispatcher, with the outcome written to its row."""

    name = "task"
    stateless = True

    def __init__(self, manager: TaskManager) -> None:
        super().__init__(manager.dispatcher)
        self.manager = manager

    async def handle(self, request: Request, exchange: Exchange) -> dict[str, Any]:
        assert isinstance(exchange, TaskExchange)
        task_id = exchange.task_id
        watcher = asyncio.ensure_future(self.manager.watch_for_cancel(task_id))
        try:
            response = await self.dispatcher.handle(request, exchange)
        except asyncio.CancelledError:
            await self.manager.finish(task_id, Task.Status.CANCELLED, message="cancelled by the client")
            raise
        except BaseException:
            await self.manager.finish(
                task_id, Task.Status.FAILED, error={"code": INTERNAL_ERROR, "message": "Internal error"}
            )
            raise
        finally:
            watcher.cancel()
        if "error" in response:
            await self.manager.finish(task_id, Task.Status.FAILED, error=response["error"])
        else:
            result = dict(response.get("result") or {})
            result.setdefault("resultType", "complete")
            await self.manager.finish(task_id, Task.Status.COMPLETED, result=result)
        return response


class TaskManager:
    """Creates tasks, runs them on this worker and answers the ``tasks/*`` methods."""

    def __init__(self, dispatcher: Any, lifecycle: RequestLifecycle) -> None:
        self.dispatcher = dispatcher
        self.lifecycle = lifecycle
        self.run_era = TaskRun(self)
        self._leases: dict[str, Lease] = {}

    # -- creating and running ---------------------------------------------------------------
    async def create(self, request: Request, exchange: ModernExchange, answers: dict[str, Any]) -> dict[str, Any]:
        """Commit a task for this ``tools/call``, start it here, and return ``CreateTaskResult``."""
        caller = exchange.caller
        ttl = mcp_settings.TASK_TTL_MS
        task = await Task.objects.acreate(
            id=secrets.token_urlsafe(32),
            principal=caller.principal_key[:64],
            user_id=caller.user_id,
            token_id=caller.token_id,
            tool=str(request.params.get("name"))[:255],
            ttl_ms=ttl,
            poll_interval_ms=int(mcp_settings.TASK_POLL_INTERVAL_MS),
            worker=WORKER_ID[:200],
        )
        lease = Lease(lease_name(task.id))
        await lease.acquire()  # before the client can ask: a reader must see a live task
        self._leases[task.id] = lease
        params = {k: v for k, v in request.params.items() if k not in ("inputResponses", "requestState", "task")}
        run_exchange = TaskExchange(
            task_id=task.id, caller=caller, info=exchange.info, meta=exchange.meta, params=params
        )
        run_exchange.remembered = dict(answers)
        run_exchange.announce = self.announce
        call = Request(request.id, "tools/call", params)
        self.lifecycle.detach(self.run_era, call, run_exchange, key=self.key(task.id))
        return {"resultType": "task", **self.describe(task, detailed=False)}

    @staticmethod
    def key(task_id: str) -> str:
        return f"task:{task_id}"

    async def finish(
        self,
        task_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str = "",
    ) -> None:
        """Write a task's end (once: a task already ended keeps its first outcome)."""
        try:
            await Task.objects.filter(pk=task_id).exclude(status__in=Task.TERMINAL).aupdate(
                status=status, result=result, error=error, status_message=message[:500], updated=timezone.now()
            )
        except Exception:
            logger.exception("mcp_sse: could not record the end of task %s", task_id)
        finally:
            lease = self._leases.pop(task_id, None)
            if lease is not None:
                await lease.release()
        await self.announce(task_id)

    async def announce(self, task_id: str) -> None:
        """Tell the listen streams of every worker that the task changed (``notifications/tasks``
        goes to those that listed it); they read its state from the row."""
        try:
            await broadcast({"type": TASK_CHANGED, "task_id": task_id})
        except Exception:  # a notification is optional; the task goes on
            logger.warning("mcp_sse: could not announce a change of task %s", task_id, exc_info=True)

    async def snapshot(self, task_id: str) -> dict[str, Any] | None:
        """The ``DetailedTask`` a listen stream sends, or None if the task is gone."""
        task = await Task.objects.filter(pk=task_id).afirst()
        return None if task is None else await self.detail(task)

    async def watch_for_cancel(self, task_id: str) -> None:
        """Cancel the running task when its row says so (``tasks/cancel`` on another worker)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                if await Task.objects.filter(pk=task_id, cancel_requested=True).aexists():
                    self.lifecycle.cancel(self.key(task_id), "cancelled by the client")
                    return
            except Exception:
                logger.warning("mcp_sse: could not check task %s for cancellation", task_id, exc_info=True)

    # -- the tasks/* methods ------------------------------------------------------------------
    async def handle(self, request: Request, exchange: ModernExchange) -> dict[str, Any]:
        """Serve ``tasks/get`` / ``tasks/update`` / ``tasks/cancel``; returns the response message."""
        try:
            if not declares_tasks(exchange.meta):
                raise missing_extension(request.method)  # before any lookup (SEP-2663)
            task = await self.find(request.params.get("taskId"), exchange.caller)
            if request.method == "tasks/get":
                result = {"resultType": "complete", **await self.detail(task)}
            elif request.method == "tasks/update":
                await self.answer(task, request.params.get("inputResponses"))
                result = {"resultType": "complete"}
            else:
                await self.cancel(task)
                result = {"resultType": "complete"}
        except MCPError as exc:
            return error_message(request.id, exc.to_error())
        return result_message(request.id, result)

    async def find(self, task_id: Any, caller: Caller) -> Task:
        if not isinstance(task_id, str) or not task_id or len(task_id) > 64:
            raise unknown_task(task_id)
        task = await Task.objects.filter(pk=task_id, principal=caller.principal_key[:64]).afirst()
        if task is None:
            raise unknown_task(task_id)
        if task.ttl_ms is not None and timezone.now() > task.created + timedelta(milliseconds=task.ttl_ms):
            await Task.objects.filter(pk=task.pk).adelete()
            raise unknown_task(task_id)
        if not task.is_terminal and not await is_alive(lease_name(task.id)):
            # Its worker died (kill -9, a lost machine): say so instead of "working" for ever.
            await Task.objects.filter(pk=task.pk).exclude(status__in=Task.TERMINAL).aupdate(
                status=Task.Status.FAILED,
                error=worker_lost_error(LOST_WORKER_MESSAGE),
                status_message=LOST_WORKER_MESSAGE,
                updated=timezone.now(),
            )
            await task.arefresh_from_db()
            await self.announce(task.id)
        return task

    def describe(self, task: Task, *, detailed: bool, status: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskId": task.id,
            "status": status or task.status,
            "createdAt": iso(task.created),
            "lastUpdatedAt": iso(task.updated),
            "ttlMs": task.ttl_ms,
            "pollIntervalMs": task.poll_interval_ms,
        }
        if task.status_message:
            out["statusMessage"] = task.status_message
        if detailed and task.status == Task.Status.COMPLETED and task.result is not None:
            out["result"] = task.result
        if detailed and task.status == Task.Status.FAILED and task.error is not None:
            out["error"] = task.error
        return out

    async def detail(self, task: Task) -> dict[str, Any]:
        """A point-in-time ``DetailedTask``: outstanding questions make a working task
        ``input_required``."""
        if task.status != Task.Status.WORKING:
            return self.describe(task, detailed=True)
        outstanding = [
            (row.key, row.request, row.asked)
            async for row in TaskInput.objects.filter(task=task, answer__isnull=True).order_by("asked", "key")
        ]
        if not outstanding:
            return self.describe(task, detailed=True)
        detailed = self.describe(task, detailed=True, status=Task.Status.INPUT_REQUIRED)
        detailed["inputRequests"] = {key: request for key, request, _ in outstanding}
        latest = max(asked for _, _, asked in outstanding)
        detailed["lastUpdatedAt"] = iso(max(latest, task.updated))
        return detailed

    async def answer(self, task: Task, responses: Any) -> None:
        """``tasks/update``: answers for outstanding keys; unknown or answered keys are ignored."""
        if not isinstance(responses, Mapping):
            raise MCPError(INVALID_PARAMS, "Invalid params: tasks/update needs an inputResponses object")
        outstanding = {
            row.key: row.request
            async for row in TaskInput.objects.filter(task=task, answer__isnull=True, key__in=list(responses))
        }
        for key, request in outstanding.items():
            method = request.get("method") if isinstance(request, Mapping) else None
            answer = check_answer(key, str(method), responses[key])
            await TaskInput.objects.filter(task=task, key=key, answer__isnull=True).aupdate(answer=answer)
        if outstanding:
            await self.announce(task.id)

    async def cancel(self, task: Task) -> None:
        """``tasks/cancel``: idempotent; a running task is flagged (and cancelled at once when it
        runs here; otherwise its worker sees the flag within ``WATCH_INTERVAL``)."""
        if await cancel_task(task.id):
            self.lifecycle.cancel(self.key(task.id), "cancelled by the client")


async def cancel_task(task_id: str) -> bool:
    """Ask for a task's cancellation: the flag its worker watches, wherever it runs. The one
    path of ``tasks/cancel`` and the admin's action. False when the task had already ended."""
    return bool(await Task.objects.filter(pk=task_id).exclude(status__in=Task.TERMINAL).aupdate(cancel_requested=True))
