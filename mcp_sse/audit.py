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
import json
import logging
import marshal
import operator
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, models, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations

from .conf import mcp_settings
from .protocol import jsonutil

logger = logging.getLogger("mcp_sse")

REDACTED = "[redacted]"


class Redactor:
    """Replaces values whose key matches a ``REDACT_KEYS`` pattern, at any depth.

    The patterns are one alternation, and each key's verdict is remembered: the call log sees
    the same few keys over and over, so the regex runs about once per distinct key.
    """

    MEMO_LIMIT = 10_000

    def __init__(self, patterns: list[str]) -> None:
        joined = "|".join(f"(?:{p})" for p in patterns)
        self.pattern = re.compile(joined, re.IGNORECASE) if patterns else None
        self.memo: dict[Any, bool] = {}

    def is_secret(self, key: Any) -> bool:
        verdict = self.memo.get(key)
        if verdict is None:
            verdict = self.pattern is not None and self.pattern.search(str(key)) is not None
            if len(self.memo) < self.MEMO_LIMIT:
                self.memo[key] = verdict
        return verdict

    def __call__(self, value: Any) -> Any:
        # Only containers recurse: a call per leaf value was half the work on typical results.
        if isinstance(value, dict):
            is_secret = self.is_secret
            return {
                k: REDACTED if is_secret(k) else self(v) if isinstance(v, dict | list) else v for k, v in value.items()
            }
        if isinstance(value, list):
            return [self(v) if isinstance(v, dict | list) else v for v in value]
        return value


def redactor() -> Redactor:
    return mcp_settings.derived("redactor", lambda: Redactor(list(mcp_settings.REDACT_KEYS)))


def redact(value: Any) -> Any:
    """``value`` with every value under a ``REDACT_KEYS``-matching key replaced, at any depth."""
    return redactor()(value)


def encode_capped(value: Any, limit: int | None = None) -> str:
    """``value`` as JSON text of at most about ``limit`` (default ``CALL_LOG_MAX_CHARS``)
    characters; a larger value becomes ``{"truncated": true, "preview": ...}``."""
    try:
        text = jsonutil.dumps_str(value)
    except (TypeError, ValueError):
        text = jsonutil.dumps_str(repr(value))
    if limit is None:
        limit = mcp_settings.CALL_LOG_MAX_CHARS
    if len(text) <= limit:
        return text
    return jsonutil.dumps_str({"truncated": True, "preview": text[:limit]})


# Text no database column takes everywhere: NUL (PostgreSQL text and jsonb refuse it) and
# lone UTF-16 surrogates (not Unicode: SQLite's UTF-8 encoding and jsonb refuse them, and a
# page showing one cannot be encoded). The call log keeps U+FFFD in their place.
REPLACEMENT = "\ufffd"
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
# In JSON text they are escapes (the encoder writes "\u0000"; jsonutil writes a surrogate as
# "\udXXX"). Every escape is matched whole, so the "u0000" of an escaped backslash ("\\u0000",
# a backslash then "u0000") is never taken for one.
_JSON_ESCAPE = re.compile(r"\\(?:(u0000|ud[89a-f][0-9a-f]{2})|.)", re.IGNORECASE)


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (usually ``text`` itself)."""
    if text.isascii() and "\x00" not in text:  # isascii() is O(1): a flag of the string
        return text
    return _UNSTORABLE_TEXT.sub(REPLACEMENT, text)


def storable_json(text: str) -> str:
    """JSON text with the escapes of NUL and lone surrogates replaced by U+FFFD."""
    if "\\u" not in text:
        return text
    return _JSON_ESCAPE.sub(lambda m: REPLACEMENT if m.group(1) else m.group(0), text)


class EncodedJSON(str):
    """JSON text already encoded: stored as it is, never encoded a second time."""


def stored_json(value: Any, redact_value: Redactor, limit: int | None = None) -> EncodedJSON:
    """A call log JSON value as it is stored: secrets redacted, capped, encoded once, with
    text no database takes (NUL, lone surrogates) replaced by U+FFFD."""
    return EncodedJSON(storable_json(encode_capped(redact_value(value), limit)))


def prepared(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry ready to store: secrets redacted, arguments and result encoded once as capped
    JSON text (:class:`EncodedJSON`)."""
    redact_value = redactor()
    ready = dict(entry)
    if isinstance(entry.get("when"), float):  # a time.time() stamp, made what timezone.now() gives
        ready["when"] = datetime.fromtimestamp(entry["when"], tz=UTC if settings.USE_TZ else None)
    ready["arguments"] = stored_json(entry.get("arguments") or {}, redact_value)
    if entry.get("result") is not None:
        ready["result"] = stored_json(entry["result"], redact_value)
    return ready


# Seconds between two applications of CALL_LOG_RETENTION_DAYS by the writer.
PRUNE_INTERVAL = 600
# Rows deleted per statement while pruning: short statements, short locks on a busy table.
PRUNE_CHUNK = 5000


def prune_call_log(days: float, *, dry_run: bool = False) -> int:
    """Delete (or, with ``dry_run``, count) call log entries older than ``days`` days.

    The one pruning path: ``manage.py mcp_prune_logs`` and the writer's retention both call it.
    """
    from datetime import timedelta

    from django.utils import timezone

    from .models import CallLog

    old = CallLog.objects.filter(when__lt=timezone.now() - timedelta(days=days))
    if dry_run:
        return old.count()
    deleted = 0
    while chunk := list(old.order_by().values_list("pk", flat=True)[:PRUNE_CHUNK]):
        deleted += CallLog.objects.filter(pk__in=chunk)._raw_delete(router.db_for_write(CallLog))
    return deleted


class CallRecorder:
    """Interface: ``record(entry)`` must return at once and never raise.

    Entries carry the raw arguments and result: pass them through :func:`prepared` before
    storing them anywhere (it redacts ``REDACT_KEYS`` and caps the size, and encodes them).
    """

    def record(self, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        return None


class NullRecorder(CallRecorder):
    def record(self, entry: dict[str, Any]) -> None:
        return None


class DatabaseCallRecorder(CallRecorder):
    # Entries that make a batch due at once (otherwise: every FLUSH_DELAY), bounding the buffer.
    BATCH_SIZE = 1000
    # Seconds entries wait to be written together. Shorter batches keep the writer's hold on the
    # GIL short, and with it the wait they add to calls in flight: against 0.25 s, 0.1 s gave
    # a lower p95 in 4 of 4 comparisons at c=64 (p99 3 of 4) for the same CPU per call. 1.0 s
    # was no better and had a worse p99.
    FLUSH_DELAY = 0.1

    def __init__(self) -> None:
        # Entries wait here as marshal bytes, not as the call's dicts: objects kept alive for
        # a tenth of a second outlive the young GC generations, and thousands of them passing
        # through the old one made the collector's work grow with the call rate.
        self._buffer: list[bytes | dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-call-log")
        # The first batch of a process prunes at once; then every PRUNE_INTERVAL seconds.
        self._last_prune = -float(PRUNE_INTERVAL)
        atexit.register(self._flush_at_exit)

    def record(self, entry: dict[str, Any]) -> None:
        entry.setdefault("when", time.time())
        packed: bytes | dict[str, Any]
        try:
            packed = marshal.dumps(entry)
        except ValueError:  # a value marshal cannot hold (a datetime, a custom type): keep the dict
            packed = entry
        with self._lock:
            self._buffer.append(packed)
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
        # (after it was taken) must not wait for some later call to schedule another flush. They
        # wait the usual delay, though: writing them at once would turn a busy server's log into
        # a stream of tiny transactions, each paying its own commit.
        # The writer keeps its connection while batches keep coming (a busy server would
        # otherwise reconnect four times a second) and gives it back once the buffer is empty.
        loop = asyncio.get_running_loop()
        try:
            while True:
                if delay:
                    await asyncio.sleep(delay)
                await loop.run_in_executor(self._writer, self._write_now)
                if self._prune_due():
                    await loop.run_in_executor(self._writer, self._prune)
                with self._lock:
                    pending = len(self._buffer)
                if not pending:
                    return
                delay = 0 if pending >= self.BATCH_SIZE else self.FLUSH_DELAY
        finally:
            await loop.run_in_executor(self._writer, close_old_connections)

    async def flush(self) -> None:
        """Write what is buffered now (tests, shutdown hooks)."""
        await asyncio.get_running_loop().run_in_executor(self._writer, self._write_and_release)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._buffer = self._buffer, []
        return [marshal.loads(item) if isinstance(item, bytes) else item for item in batch]

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
            try:
                insert_call_logs(batch)
            except DatabaseError:
                # The kept connection may have gone stale (server restart, idle timeout):
                # once more on a fresh one.
                close_old_connections()
                insert_call_logs(batch)
        except Exception:
            logger.exception("mcp_sse: could not write %d call log entries", len(batch))
            close_old_connections()  # a broken connection is not kept for the next batch

    def _prune_due(self) -> bool:
        if mcp_settings.CALL_LOG_RETENTION_DAYS is None:
            return False
        return time.monotonic() - self._last_prune >= PRUNE_INTERVAL

    def _prune(self) -> None:
        """Apply ``CALL_LOG_RETENTION_DAYS`` on the writer's thread, between batches."""
        self._last_prune = time.monotonic()
        try:
            deleted = prune_call_log(mcp_settings.CALL_LOG_RETENTION_DAYS)
            if deleted:
                logger.info("mcp_sse: pruned %d call log entries past the retention period", deleted)
        except Exception:
            logger.exception("mcp_sse: could not prune the call log")
            close_old_connections()

    def _flush_at_exit(self) -> None:
        try:
            self._write_now()
        except Exception:  # interpreter shutdown: the DB may be gone already
            logger.exception("mcp_sse: could not flush the call log at exit")


# Field types whose values we already hold in their database form (str, int, float, None):
# they skip the per-value preparation call. JSON and date fields keep theirs.
_PLAIN_FIELDS = ("CharField", "TextField", "IntegerField", "BigIntegerField", "FloatField", "ForeignKey")
_JSON, _DATETIME, _OTHER = range(3)  # how insert_call_logs prepares the other columns


class _AsEncoded(json.JSONEncoder):
    """Lets the backend's JSON adapter take :class:`EncodedJSON` text as the encoding itself."""

    def encode(self, o: Any) -> str:
        return o if isinstance(o, EncodedJSON) else super().encode(o)


def _kind(field: Any) -> int:
    if isinstance(field, models.JSONField):
        return _JSON
    return _DATETIME if isinstance(field, models.DateTimeField) else _OTHER


def insert_call_logs(entries: list[dict[str, Any]]) -> None:
    """One INSERT statement run for every entry (``executemany``): no model instances, no SQL
    compiled per row, each value prepared by the shortest way to its database form.

    Entries may come as ``record()`` got them (arguments and result are then redacted, capped
    and encoded here, once each, and a ``time.time()`` stamp becomes the row's datetime) or
    already through :func:`prepared` (their :class:`EncodedJSON` text goes in as it is)."""
    from .models import CallLog

    connection = connections[router.db_for_write(CallLog)]
    ops = connection.ops
    fields = [f for f in CallLog._meta.concrete_fields if not f.primary_key]
    # Columns whose values go in as they are come first, so one itemgetter takes them all.
    plain = [f for f in fields if type(f).__name__ in _PLAIN_FIELDS]
    special = [f for f in fields if type(f).__name__ not in _PLAIN_FIELDS]
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        ops.quote_name(CallLog._meta.db_table),
        ", ".join(ops.quote_name(str(f.column)) for f in plain + special),
        ", ".join(["%s"] * len(fields)),
    )
    take_plain = operator.itemgetter(*[f.attname for f in plain])
    plan = [(f, f.attname, _kind(f)) for f in special]
    # Where the backend's JSON adapter is Django's default (json.dumps of the value), encoded
    # text is its own database form; others (PostgreSQL's Jsonb) get it through the adapter.
    json_as_text = type(ops).adapt_json_value is BaseDatabaseOperations.adapt_json_value
    adapt_json = ops.adapt_json_value
    adapt_datetime = ops.adapt_datetimefield_value
    zone = UTC if settings.USE_TZ else None
    redact_value = redactor()
    limit = mcp_settings.CALL_LOG_MAX_CHARS
    rows = []
    for entry in entries:
        try:
            row = [storable_text(v) if type(v) is str else v for v in take_plain(entry)]
        except KeyError:  # an entry from elsewhere than the dispatcher: defaults fill the gaps
            row = [entry[f.attname] if f.attname in entry else f.get_default() for f in plain]
            row = [storable_text(v) if type(v) is str else v for v in row]
        for field, attname, kind in plan:
            value = entry[attname] if attname in entry else field.get_default()
            if kind == _JSON:
                if value is None and attname == "arguments":
                    value = {}
                if value is None:
                    row.append(None)
                    continue
                if not isinstance(value, EncodedJSON):
                    value = stored_json(value, redact_value, limit)
                row.append(value if json_as_text else adapt_json(value, _AsEncoded))
            elif kind == _DATETIME and isinstance(value, float):
                # What DateTimeField would store for timezone.now() at that instant, minus
                # the field's checks for naive values (this one never is, under USE_TZ).
                row.append(adapt_datetime(datetime.fromtimestamp(value, tz=zone)))
            else:
                row.append(field.get_db_prep_save(value, connection))
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
