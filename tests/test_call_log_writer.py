"""The call log writer: redaction, size capping, one encoding per value, and a failed write.

These run against the test database (PostgreSQL under CI): what the writer inserts with its
own prepared statement must read back through the ORM exactly as a model save would store it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from mcp_sse import audit
from mcp_sse.models import CallLog


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": "tools/call",
        "tool": "echo",
        "token_id": None,
        "user_id": None,
        "session_id": "s1",
        "transport": "streamable-http",
        "protocol_version": "2025-11-25",
        "client_name": "tests",
        "client_version": "1",
        "remote_addr": "127.0.0.1",
        "request_id": "1",
        "arguments": {"text": "hello"},
        "result": {"content": [{"type": "text", "text": "hello"}], "isError": False},
        "outcome": "ok",
        "error": "",
        "duration_ms": 1.5,
        "when": timezone.now(),
    }
    return base | overrides


def test_redaction_reaches_any_depth_and_ignores_case() -> None:
    value = {"Password": "p", "nested": [{"API-Key": "k", "keep": {"x_token_y": "t", "plain": 1}}], "text": "ok"}
    assert audit.redact(value) == {
        "Password": "[redacted]",
        "nested": [{"API-Key": "[redacted]", "keep": {"x_token_y": "[redacted]", "plain": 1}}],
        "text": "ok",
    }


def test_a_changed_redact_keys_setting_takes_effect() -> None:
    with override_settings(MCP_SSE={"REDACT_KEYS": ["^isbn$"]}):
        assert audit.redact({"isbn": "1", "password": "p"}) == {"isbn": "[redacted]", "password": "p"}
    assert audit.redact({"isbn": "1", "password": "p"}) == {"isbn": "1", "password": "[redacted]"}


def test_values_over_the_limit_become_a_truncated_preview() -> None:
    with override_settings(MCP_SSE={"CALL_LOG_MAX_CHARS": 50}):
        small = audit.encode_capped({"text": "short"})
        large = audit.encode_capped({"text": "x" * 500})
    assert small == '{"text":"short"}'
    assert large.startswith('{"truncated":true,"preview":"{\\"text\\":\\"xxx')
    assert len(large) < 120


def test_a_value_json_cannot_encode_is_stored_as_its_repr() -> None:
    assert audit.encode_capped({"when": object.__new__(object)}).startswith("\"{'when': <object object")


@pytest.mark.django_db
def test_written_rows_read_back_as_json_not_as_strings() -> None:
    # The arguments and result are encoded once, by prepared(); the insert must pass that text
    # through as JSON (a second encoding would store a JSON string holding the text).
    audit.insert_call_logs([audit.prepared(entry(arguments={"text": "é", "secret": "s"}, request_id="a"))])
    audit.insert_call_logs([audit.prepared(entry(result=None, request_id="b"))])
    first = CallLog.objects.get(request_id="a")
    assert first.arguments == {"text": "é", "secret": "[redacted]"}
    assert first.result == {"content": [{"type": "text", "text": "hello"}], "isError": False}
    assert CallLog.objects.filter(arguments__text="é").count() == 1  # queryable as JSON
    assert CallLog.objects.get(request_id="b").result is None


@pytest.mark.django_db
def test_raw_entries_are_stored_as_prepared_ones_are() -> None:
    """The writer hands record()'s entries straight to the insert, which redacts, caps and
    encodes them itself and turns the time.time() stamp into the row's datetime: the rows must
    equal those written through prepared() and a model-style datetime."""
    stamp = timezone.now()
    common = {"arguments": {"Token": "t", "n": [1, {"password": "p"}]}, "when": stamp}
    audit.insert_call_logs([audit.prepared(entry(request_id="prepared", **common))])
    audit.insert_call_logs(
        [entry(request_id="raw", **(common | {"when": stamp.timestamp()})), entry(request_id="none", arguments=None)]
    )
    prepared, raw = CallLog.objects.get(request_id="prepared"), CallLog.objects.get(request_id="raw")
    assert raw.arguments == prepared.arguments == {"Token": "[redacted]", "n": [1, {"password": "[redacted]"}]}
    assert raw.result == prepared.result
    assert raw.when == prepared.when == stamp
    assert CallLog.objects.get(request_id="none").arguments == {}


# transaction=True: after a failed write the writer closes its connection, which must not be
# the test's own transaction.
@pytest.mark.django_db(transaction=True)
def test_a_write_that_fails_once_is_retried(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    calls: list[int] = []
    real_insert = audit.insert_call_logs

    def flaky_insert(rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        real_insert(rows)

    monkeypatch.setattr(audit, "insert_call_logs", flaky_insert)
    recorder = audit.DatabaseCallRecorder()
    recorder._buffer = [entry(request_id="r1"), entry(request_id="r2")]
    with caplog.at_level(logging.ERROR, logger="mcp_sse"):
        recorder._write_now()
    assert calls == [2, 2]
    assert CallLog.objects.filter(request_id__in=["r1", "r2"]).count() == 2
    assert not caplog.records


@pytest.mark.django_db(transaction=True)
def test_a_write_that_keeps_failing_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    def broken_insert(rows: list[dict[str, Any]]) -> None:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(audit, "insert_call_logs", broken_insert)
    recorder = audit.DatabaseCallRecorder()
    recorder._buffer = [entry()]
    with caplog.at_level(logging.ERROR, logger="mcp_sse"):
        recorder._write_now()
    assert "could not write 1 call log entries" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_by_the_server_is_replaced(caplog: Any) -> None:
    """PostgreSQL ends the writer's kept connection (restart, idle timeout): the batch goes
    through on a new one."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL, which can end a client's connection from another session (CI runs it)")
    import psycopg

    recorder = audit.DatabaseCallRecorder()
    recorder._buffer = [entry(request_id="before")]
    recorder._write_now()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    recorder._buffer = [entry(request_id="after")]
    with caplog.at_level(logging.ERROR, logger="mcp_sse"):
        recorder._write_now()
    assert not caplog.records
    assert set(CallLog.objects.values_list("request_id", flat=True)) == {"before", "after"}


@pytest.mark.django_db(transaction=True)
def test_recorded_entries_wait_as_bytes_and_keep_their_time() -> None:
    recorder = audit.DatabaseCallRecorder()
    recorder.FLUSH_DELAY = 3600  # nothing is written while we look at the buffer
    plain = entry(request_id="packed")
    del plain["when"]  # stamped by record()
    with_datetime = entry(request_id="as-dict")  # a datetime is not marshal-able: kept as the dict
    before = timezone.now()

    async def record_both() -> list[type]:
        recorder.record(plain)
        recorder.record(with_datetime)
        kinds = [type(item) for item in recorder._buffer]
        assert recorder._task is not None
        recorder._task.cancel()
        return kinds

    assert asyncio.run(record_both()) == [bytes, dict]
    recorder._write_now()
    stored = CallLog.objects.get(request_id="packed")
    assert before - timedelta(seconds=1) <= stored.when <= timezone.now()
    assert stored.arguments == {"text": "hello"}
    assert CallLog.objects.filter(request_id="as-dict").exists()


@pytest.mark.django_db(transaction=True)
def test_the_writer_applies_the_retention_period_by_itself() -> None:
    """With CALL_LOG_RETENTION_DAYS set, recording calls is enough: the writer deletes the rows
    past the period between batches (no cron, no command), and again only after PRUNE_INTERVAL."""
    now = timezone.now()
    CallLog.objects.bulk_create(
        [CallLog(tool="old", when=now - timedelta(days=days)) for days in (400, 91, 89)]
    )
    recorder = audit.DatabaseCallRecorder()

    async def record_one(request_id: str) -> None:
        recorder.record(entry(request_id=request_id))
        assert recorder._task is not None
        await recorder._task

    with override_settings(MCP_SSE={"CALL_LOG_RETENTION_DAYS": 90}):
        asyncio.run(record_one("first"))
        assert sorted(CallLog.objects.values_list("tool", "request_id")) == [("echo", "first"), ("old", "")]
        # Within PRUNE_INTERVAL of the last pruning nothing more is deleted.
        CallLog.objects.create(tool="old", when=now - timedelta(days=200))
        asyncio.run(record_one("second"))
        assert CallLog.objects.filter(tool="old").count() == 2
        recorder._last_prune -= audit.PRUNE_INTERVAL
        asyncio.run(record_one("third"))
        assert CallLog.objects.filter(tool="old").count() == 1
    # Without the setting the writer deletes nothing.
    CallLog.objects.create(tool="old", when=now - timedelta(days=900))
    recorder._last_prune -= audit.PRUNE_INTERVAL
    asyncio.run(record_one("fourth"))
    assert CallLog.objects.filter(tool="old").count() == 2


@pytest.mark.django_db
def test_pruning_deletes_in_chunks(monkeypatch: Any) -> None:
    monkeypatch.setattr(audit, "PRUNE_CHUNK", 2)
    old = timezone.now() - timedelta(days=10)
    CallLog.objects.bulk_create([CallLog(tool="old", when=old) for _ in range(5)] + [CallLog(tool="new")])
    assert audit.prune_call_log(5, dry_run=True) == 5 and CallLog.objects.count() == 6
    assert audit.prune_call_log(5) == 5
    assert list(CallLog.objects.values_list("tool", flat=True)) == ["new"]


@pytest.mark.parametrize("value", [0, -3, "30", True])
def test_retention_must_be_a_positive_number_of_days(value: object) -> None:
    from mcp_sse import checks

    with override_settings(MCP_SSE={"CALL_LOG_RETENTION_DAYS": value}):
        assert [e.id for e in checks.check_settings() if e.id == "mcp_sse.E020"] == ["mcp_sse.E020"]
