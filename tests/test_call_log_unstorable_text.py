"""Text no database takes everywhere, in call log entries: NUL and lone UTF-16 surrogates.

PostgreSQL refuses NUL in text and jsonb (and "\\u0000" escapes in jsonb) and jsonb refuses
surrogate escapes ("Unicode low surrogate must follow a high surrogate"); SQLite's driver
cannot encode a lone surrogate as UTF-8. Clients can send both (JSON "\\u0000" and "\\ud800"
escapes). Before: the insert failed and the whole batch of entries was lost (one bad entry
took up to 1000 others with it). After: U+FFFD takes their place, in JSON and text columns.

Run against the test database: SQLite by default, PostgreSQL with DATABASE_URL set.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from mcp_sse import audit
from mcp_sse.models import CallLog

R = "\ufffd"


def entry(request_id: str, **overrides: Any) -> dict[str, Any]:
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
        "request_id": request_id,
        "arguments": {"text": "hello"},
        "result": None,
        "outcome": "ok",
        "error": "",
        "duration_ms": 1.5,
        "when": timezone.now(),
    }
    return base | overrides


HOSTILE = {
    "arguments": {"text": "a\ud800b\x00c", "k\udc00": ["\x00", {"n\x00": "\udfff"}], "path": "C:\\u0000"},
    "result": {"content": [{"type": "text", "text": "r\ud800\x00"}], "isError": True},
    "tool": "no\x00such\ud800tool",
    "error": "Unknown tool: no\x00such\ud800tool",
    "client_name": "cli\ud83dent",
    "client_version": "1\x00",
}
STORED = {
    # A literal backslash followed by "u0000" is text, not an escape: it stays.
    "arguments": {"text": f"a{R}b{R}c", f"k{R}": [R, {f"n{R}": R}], "path": "C:\\u0000"},
    "result": {"content": [{"type": "text", "text": f"r{R}{R}"}], "isError": True},
    "tool": f"no{R}such{R}tool",
    "error": f"Unknown tool: no{R}such{R}tool",
    "client_name": f"cli{R}ent",
    "client_version": f"1{R}",
}


def stored(request_id: str) -> dict[str, Any]:
    row = CallLog.objects.get(request_id=request_id)
    return {key: getattr(row, key) for key in STORED}


@pytest.mark.django_db
@pytest.mark.parametrize("prepared", [False, True], ids=["as recorded", "through prepared()"])
def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(prepared: bool) -> None:
    row = entry("hostile", **HOSTILE)
    audit.insert_call_logs([audit.prepared(row) if prepared else row])
    assert stored("hostile") == STORED


@pytest.mark.django_db
def test_valid_text_is_stored_unchanged() -> None:
    text = "é 日本 \U0001f600 \\ud800 \t\n \x7f"
    audit.insert_call_logs([entry("valid", arguments={"text": text}, error=text, client_name=text[:50])])
    row = CallLog.objects.get(request_id="valid")
    assert (row.arguments, row.error, row.client_name) == ({"text": text}, text, text[:50])


@pytest.mark.django_db
def test_one_hostile_entry_does_not_cost_its_batch() -> None:
    audit.insert_call_logs([entry("before"), entry("hostile", **HOSTILE), entry("after")])
    assert CallLog.objects.filter(request_id__in=["before", "hostile", "after"]).count() == 3


def test_storable_json_leaves_escaped_backslashes_alone() -> None:
    assert audit.storable_json('{"a":"x\\u0000"}') == '{"a":"x\ufffd"}'
    assert audit.storable_json('{"a":"x\\\\u0000"}') == '{"a":"x\\\\u0000"}'
    assert audit.storable_json('{"a":"x\\\\\\u0000"}') == '{"a":"x\\\\\ufffd"}'
    assert audit.storable_json('{"a":"\\ud83d\\ude00 \\u001f"}') == '{"a":"\ufffd\ufffd \\u001f"}'
    plain = '{"a":"no escapes at all"}'
    assert audit.storable_json(plain) is plain


@pytest.mark.django_db
def test_nul_alone_is_replaced_too() -> None:
    """SQLite stores NUL; PostgreSQL refused it (before: "unsupported Unicode escape sequence"
    for jsonb, "cannot contain NUL (0x00) bytes" for text). Stored alike on both now."""
    audit.insert_call_logs([entry("nul", arguments={"text": "a\x00"}, tool="t\x00", error="e\x00")])
    row = CallLog.objects.get(request_id="nul")
    assert (row.arguments, row.tool, row.error) == ({"text": f"a{R}"}, f"t{R}", f"e{R}")
