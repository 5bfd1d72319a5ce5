"""The pure protocol layer: JSON, JSON-RPC validation, SSE framing, version negotiation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse.protocol import jsonutil, sse, versions
from mcp_sse.protocol.errors import INVALID_REQUEST, MCPError
from mcp_sse.protocol.jsonrpc import Notification, Request, Response, parse_message

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class TestJSON:
    @given(json_values)
    def test_round_trip(self, value: object) -> None:
        assert jsonutil.loads(jsonutil.dumps(value)) == value

    @pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"a": NaN}'])
    def test_non_finite_numbers_are_rejected_on_input(self, text: str) -> None:
        with pytest.raises(jsonutil.JSONDecodeError):
            jsonutil.loads(text)

    @given(json_values)
    def test_output_is_the_stdlib_encoders_compact_unescaped_text(self, value: object) -> None:
        # dumps() reuses one C encoder instead of building one per call: same text, byte for byte.
        expected = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        assert jsonutil.dumps_str(value) == expected
        assert jsonutil.dumps(value) == expected.encode("utf-8")

    def test_circular_and_unencodable_values_raise_what_json_raises(self) -> None:
        loop: list[object] = []
        loop.append(loop)
        with pytest.raises(ValueError, match="Circular reference"):
            jsonutil.dumps(loop)
        with pytest.raises(TypeError, match="not JSON serializable"):
            jsonutil.dumps({"x": object()})

    def test_non_finite_numbers_are_rejected_on_output(self) -> None:
        with pytest.raises(ValueError):
            jsonutil.dumps({"x": float("nan")})

    def test_invalid_utf8_is_a_decode_error(self) -> None:
        with pytest.raises(jsonutil.JSONDecodeError, match="UTF-8"):
            jsonutil.loads(b'{"a": "\xff"}')

    def test_deep_nesting_is_a_decode_error_not_a_crash(self) -> None:
        with pytest.raises(jsonutil.JSONDecodeError):
            jsonutil.loads("[" * 100_000 + "]" * 100_000)

    @given(st.binary(max_size=200))
    def test_arbitrary_bytes_never_raise_anything_else(self, data: bytes) -> None:
        try:
            jsonutil.loads(data)
        except jsonutil.JSONDecodeError:
            pass


class TestJSONRPC:
    def test_request_notification_response(self) -> None:
        assert parse_message({"jsonrpc": "2.0", "id": 1, "method": "ping"}) == Request(1, "ping", {})
        assert parse_message({"jsonrpc": "2.0", "method": "n", "params": {"a": 1}}) == Notification("n", {"a": 1})
        assert parse_message({"jsonrpc": "2.0", "id": "x", "result": {}}) == Response("x", {}, None)

    @pytest.mark.parametrize(
        "message, reason",
        [
            ([], "must be a JSON object"),
            ({"id": 1, "method": "ping"}, '"jsonrpc" must be exactly "2.0"'),
            ({"jsonrpc": "2.0", "id": None, "method": "ping"}, '"id" must be a string or an integer'),
            ({"jsonrpc": "2.0", "id": True, "method": "ping"}, '"id" must be a string or an integer'),
            ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, '"id" must be a string or an integer'),
            ({"jsonrpc": "2.0", "id": 1, "method": ""}, '"method" must be a non-empty string'),
            ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}, '"params" must be an object'),
            ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1}}, "either result or error"),
            ({"jsonrpc": "2.0", "id": 1, "error": {"message": "no code"}}, "integer code"),
            ({"jsonrpc": "2.0", "id": 1}, 'needs "method", "result" or "error"'),
        ],
    )
    def test_invalid_messages_name_the_problem(self, message: object, reason: str) -> None:
        with pytest.raises(MCPError) as caught:
            parse_message(message)
        assert caught.value.code == INVALID_REQUEST
        assert reason in caught.value.message

    @given(json_values)
    def test_any_json_value_parses_or_raises_invalid_request(self, value: object) -> None:
        try:
            parse_message(value)
        except MCPError as exc:
            assert exc.code == INVALID_REQUEST


class TestSSE:
    def test_event_with_all_fields(self) -> None:
        assert sse.encode_event("x", event="message", event_id="s.1", retry_ms=500) == (
            b"id: s.1\nevent: message\nretry: 500\ndata: x\n\n"
        )

    def test_priming_event_has_empty_data(self) -> None:
        assert sse.encode_event("", event_id="s.1") == b"id: s.1\ndata: \n\n"

    def test_multiline_data_is_split(self) -> None:
        assert sse.encode_event("a\nb\r\nc") == b"data: a\ndata: b\ndata: c\n\n"

    def test_field_injection_is_impossible(self) -> None:
        encoded = sse.encode_event("d", event="message\ndata: injected", event_id="1\r\nevent: x")
        assert encoded.count(b"\n") == 4  # id, event, data, blank
        assert b"\ndata: injected" not in encoded

    @given(st.text(), st.text(), st.text())
    def test_any_text_frames_into_one_event(self, data: str, event: str, event_id: str) -> None:
        encoded = sse.encode_event(data, event=event, event_id=event_id).decode()
        assert encoded.endswith("\n\n") and "\n\n" not in encoded[:-2]
        lines = encoded[:-2].split("\n")
        parsed_data = [line[6:] for line in lines if line.startswith("data: ")]
        assert "\n".join(parsed_data) == data.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")

    def test_comment(self) -> None:
        assert sse.encode_comment("keep-alive") == b": keep-alive\n\n"


class TestVersions:
    @pytest.mark.parametrize("requested", list(versions.HANDSHAKE_VERSIONS))
    def test_known_versions_are_echoed(self, requested: str) -> None:
        assert versions.negotiate(requested) == requested

    @pytest.mark.parametrize("requested", ["2099-01-01", "2026-07-28", None, 5])
    def test_others_get_our_latest_handshake_version(self, requested: object) -> None:
        assert versions.negotiate(requested) == "2025-11-25"

    def test_modern_requests_carry_the_version_in_meta(self) -> None:
        assert versions.is_modern_request({"_meta": {versions.META_PROTOCOL_VERSION: "2026-07-28"}})
        assert not versions.is_modern_request({"_meta": {"progressToken": 1}})
        assert not versions.is_modern_request(json.loads('{"name": "x"}'))
