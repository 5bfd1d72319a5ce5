"""The call log: every tool call, resource read and prompt get, recorded off the call path.

The recorder class is the ``CALL_RECORDER`` setting. The default buffers entries in memory and
writes them in batches from a thread of its own (one prepared INSERT run with ``executemany``),
so a call never waits for the database and never queues behind sync tools; redaction and size
capping happen there too, off the call path. What is still buffered at shutdown is flushed by
an ``atexit`` hook. A failed write is logged, never raised into a call.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connections, router, transaction
from django.utils import timezone

from .conf import mcp_settings
from .protocol import jsonutil

logger = logging.getLogger("mcp_sse")

REDACTED = "[redacted]"


def redact_patterns() -> list[re.Pattern[str]]:
    return mcp_settings.derived(
        "redact_patterns", lambda: [re.compile(p, re.IGNORECASE) for p in mcp_settings.REDACT_KEYS]
    )


def redact(value: Any, patterns: list[re.Pattern[str]] | None = None) -> Any:
    """Replace values whose key matches a ``REDACT_KEYS`` pattern, at any depth."""
    if patterns is None:
        patterns = redact_patterns()
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


def prepared(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry ready to store: secrets redacted, arguments and result capped in size."""
    ready = dict(entry)
    ready["arguments"] = cap(redact(entry.get("arguments") or {}))
    if entry.get("result") is not None:
        ready["result"] = cap(redact(entry["result"]))
    return ready


class CallRecorder:
    """Interface: ``record(entry)`` must return at once and never raise.

    Entries carry the raw arguments and result: pass them through :func:`prepared` before
    storing them anywhere (it redacts ``REDACT_KEYS`` and caps the size).
    """

    def record(self, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        return None


class NullRecorder(CallRecorder):
    def record(self, entry: dict[str, Any]) -> None:
        return None


class DatabaseCallRecorder(CallRecorder):
    BATCH_SIZE = 200
    # Seconds entries wait to be written together (1.0 s measured no better, with a worse p99).
    FLUSH_DELAY = 0.25

    def __init__(self) -> None:
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-call-log")
        atexit.register(self._flush_at_exit)

    def record(self, entry: dict[str, Any]) -> None:
        entry.setdefault("when", timezone.now())
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
        await asyncio.get_running_loop().run_in_executor(self._writer, self._write_and_release)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._buffer = self._buffer, []
        return batch

    def _write_and_release(self) -> None:
        try:
            self._write_now()
        finally:
            close_old_connections()  # honours CONN_MAX_AGE, like a request would

    def _write_now(self) -> None:
        batch = self._take()
        if not batch:
            return
        try:
            insert_call_logs([prepared(entry) for entry in batch])
        except Exception:
            logger.exception("mcp_sse: could not write %d call log entries", len(batch))

    def _flush_at_exit(self) -> None:
        try:
            self._write_now()
        except Exception:  # interpreter shutdown: the DB may be gone already
            logger.exception("mcp_sse: could not flush the call log at exit")


# Field types whose values we already hold in their database form (str, int, float, None):
# they skip the per-value preparation call. JSON and date fields keep theirs.
_PLAIN_FIELDS = ("CharField", "TextField", "IntegerField", "BigIntegerField", "FloatField", "ForeignKey")


def insert_call_logs(entries: list[dict[str, Any]]) -> None:
    """One INSERT statement run for every entry (``executemany``): no model instances, no SQL
    compiled per row. JSON and date values go through their field's DB preparation."""
    from .models import CallLog

    connection = connections[router.db_for_write(CallLog)]
    fields = [f for f in CallLog._meta.concrete_fields if not f.primary_key]
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        connection.ops.quote_name(CallLog._meta.db_table),
        ", ".join(connection.ops.quote_name(str(f.column)) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    plan = [(f, f.attname, type(f).__name__ in _PLAIN_FIELDS) for f in fields]
    rows = []
    for entry in entries:
        row = []
        for field, attname, plain in plan:
            value = entry[attname] if attname in entry else field.get_default()
            row.append(value if plain else field.get_db_prep_save(value, connection))
        rows.append(row)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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
