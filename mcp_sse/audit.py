"""The call log: every tool call, resource read and prompt get, recorded off the call path.

The recorder class is the ``CALL_RECORDER`` setting. The default buffers entries in memory and
writes them in batches from a background task (``bulk_create`` in a worker thread), so a call
never waits for the database; what is still buffered at shutdown is flushed by an ``atexit``
hook. A failed write is logged, never raised into a call.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
from typing import Any

from channels.db import database_sync_to_async

from .conf import mcp_settings
from .protocol import jsonutil

logger = logging.getLogger("mcp_sse")

REDACTED = "[redacted]"


def redact(value: Any, patterns: list[re.Pattern[str]] | None = None) -> Any:
    """Replace values whose key matches a ``REDACT_KEYS`` pattern, at any depth."""
    if patterns is None:
        patterns = [re.compile(p, re.IGNORECASE) for p in mcp_settings.REDACT_KEYS]
    if isinstance(value, dict):
        return {
            k: (REDACTED if any(p.search(str(k)) for p in patterns) else redact(v, patterns)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, patterns) for v in value]
    return value


def cap(value: Any) -> Any:
    """Keep stored JSON under ``CALL_LOG_MAX_CHARS``; larger values become a truncated string."""
    try:
        text = jsonutil.dumps_str(value)
    except (TypeError, ValueError):
        text = repr(value)
    limit = mcp_settings.CALL_LOG_MAX_CHARS
    if len(text) <= limit:
        return value
    return {"truncated": True, "preview": text[:limit]}


class CallRecorder:
    """Interface: ``record(entry)`` must return at once and never raise."""

    def record(self, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        return None


class NullRecorder(CallRecorder):
    def record(self, entry: dict[str, Any]) -> None:
        return None


class DatabaseCallRecorder(CallRecorder):
    BATCH_SIZE = 200
    FLUSH_DELAY = 0.25

    def __init__(self) -> None:
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        atexit.register(self._flush_at_exit)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._buffer.append(entry)
            full = len(self._buffer) >= self.BATCH_SIZE
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_now()
            return
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._flush_soon(0 if full else self.FLUSH_DELAY))

    async def _flush_soon(self, delay: float) -> None:
        # Keep going until the buffer is empty: entries recorded while a batch is being written
        # (after it was taken) must not wait for some later call to schedule another flush.
        while True:
            if delay:
                await asyncio.sleep(delay)
            await self.flush()
            with self._lock:
                if not self._buffer:
                    return

    async def flush(self) -> None:
        await database_sync_to_async(self._write_now)()

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._buffer = self._buffer, []
        return batch

    def _write_now(self) -> None:
        batch = self._take()
        if not batch:
            return
        from .models import CallLog

        try:
            CallLog.objects.bulk_create([CallLog(**entry) for entry in batch], batch_size=self.BATCH_SIZE)
        except Exception:
            logger.exception("mcp_sse: could not write %d call log entries", len(batch))

    def _flush_at_exit(self) -> None:
        try:
            self._write_now()
        except Exception:  # interpreter shutdown: the DB may be gone already
            logger.exception("mcp_sse: could not flush the call log at exit")


_recorder: CallRecorder | None = None
_recorder_class: Any = None


def get_recorder() -> CallRecorder:
    """The configured recorder (one per process; rebuilt when the setting changes)."""
    global _recorder, _recorder_class
    recorder_class = mcp_settings.CALL_RECORDER or NullRecorder
    if _recorder is None or _recorder_class is not recorder_class:
        _recorder = recorder_class()
        _recorder_class = recorder_class
    return _recorder
