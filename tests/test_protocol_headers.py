"""The 2026-07-28 mirrored-header rules (SEP-2243), pure functions: examples and properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse.protocol import headers as h

REGION_SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "count": {"type": "integer", "x-mcp-header": "Count"},
        "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
        "query": {"type": "string"},
        "target": {
            "type": "object",
            "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}},
        },
        "items": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}},
        "choice": {"anyOf": [{"type": "string", "x-mcp-header": "Choice"}]},
    },
}


def b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


class TestDecode:
    def test_plain_value_is_literal(self) -> None:
        assert h.decode_header_value("us-west1") == "us-west1"

    def test_sentinel_is_decoded(self) -> None:
        assert h.decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=") == "Hello, 世界"

    @pytest.mark.parametrize(
        "raw",
        [
            "=?base64?SGVsbG8?=",  # missing padding
            "=?base64?SGVs!!!bG8=?=",  # not in the alphabet
            "=?base64?SGVsbG9=?=",  # non-zero trailing bits: not canonical
            "=?base64?/w==?=",  # decodes to bytes that are not UTF-8
            "=?base64?SGVs bG8=?=",  # space inside the payload
        ],
    )
    def test_malformed_base64_is_rejected(self, raw: str) -> None:
        with pytest.raises(h.HeaderMismatch):
            h.decode_header_value(raw)

    @pytest.mark.parametrize("raw", ["=?base64?SGVsbG8=", "SGVsbG8=?=", "=?BASE64?SGVsbG8=?=", "=?base64?="])
    def test_without_both_exact_markers_the_value_is_literal(self, raw: str) -> None:
        assert h.decode_header_value(raw) == raw

    @pytest.mark.parametrize("raw", ["a\x00b", "caf\xe9", "line\nbreak", "del\x7f"])
    def test_invalid_field_characters_are_rejected(self, raw: str) -> None:
        with pytest.raises(h.HeaderMismatch):
            h.decode_header_value(raw)

    @given(st.text())
    def test_encode_then_decode_round_trips(self, value: str) -> None:
        encoded = h.encode_header_value(value)
        assert h.is_valid_field_value(encoded)
        assert encoded == encoded.strip(" \t") or encoded == ""
        assert h.decode_header_value(encoded) == value

    @given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
    def test_safe_ascii_travels_as_is_unless_it_looks_like_the_sentinel(self, value: str) -> None:
        encoded = h.encode_header_value(value)
        looks_encoded = value.startswith("=?base64?") and value.endswith("?=")
        assert (encoded == value) != looks_encoded

    @given(st.binary(min_size=1))
    def test_random_payloads_never_crash(self, payload: bytes) -> None:
        raw = "=?base64?" + payload.decode("latin-1") + "?="
        try:
            h.decode_header_value(raw)
        except h.HeaderMismatch:
            pass


class TestValueMatching:
    @pytest.mark.parametrize(
        ("header", "body", "match"),
        [
            ("42", 42, True),
            ("42.0", 42, True),
            ("42", 42.0, True),
            ("4.2e1", 42, True),
            ("43", 42, False),
            ("forty-two", 42, False),
            ("NaN", 42, False),
            ("true", True, True),
            ("True", True, False),
            ("false", False, True),
            ("1", True, False),
            ("abc", "abc", True),
            ("ABC", "abc", False),
            ("1", "1", True),
        ],
    )
    def test_examples(self, header: str, body: object, match: bool) -> None:
        assert h.value_matches(header, body) is match

    @given(st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1))
    def test_integers_compare_numerically(self, number: int) -> None:
        text = h.header_text(number)
        assert text is not None
        assert h.value_matches(text, number)
        assert h.value_matches(text + ".0", number)
        assert not h.value_matches(str(number + 1), number)


class TestStandardHeaders:
    def test_collect_lowercases_names_and_trims_values(self) -> None:
        assert h.collect([("MCP-METHOD", "  tools/list\t")]) == {"mcp-method": "tools/list"}

    def test_a_repeated_mcp_header_is_ambiguous(self) -> None:
        with pytest.raises(h.HeaderMismatch, match="more than once"):
            h.collect([("Mcp-Method", "tools/list"), ("mcp-method", "tools/call")])

    def test_protocol_version_must_be_present_and_equal(self) -> None:
        h.check_protocol_version({"mcp-protocol-version": "2026-07-28"}, "2026-07-28")
        with pytest.raises(h.HeaderMismatch, match="required"):
            h.check_protocol_version({}, "2026-07-28")
        with pytest.raises(h.HeaderMismatch, match="does not match"):
            h.check_protocol_version({"mcp-protocol-version": "2025-11-25"}, "2026-07-28")

    def test_method_header_is_required_and_case_sensitive(self) -> None:
        h.check_method_and_name({"mcp-method": "tools/list"}, "tools/list", {})
        with pytest.raises(h.HeaderMismatch, match="required"):
            h.check_method_and_name({}, "tools/list", {})
        with pytest.raises(h.HeaderMismatch, match="does not match"):
            h.check_method_and_name({"mcp-method": "TOOLS/LIST"}, "tools/list", {})

    @pytest.mark.parametrize(
        ("method", "params", "name"),
        [
            ("tools/call", {"name": "get_weather"}, "get_weather"),
            ("prompts/get", {"name": "greet"}, "greet"),
            ("resources/read", {"uri": "file:///a b.txt"}, b64("file:///a b.txt")),
            ("resources/read", {"uri": "test://static-text"}, "test://static-text"),
        ],
    )
    def test_name_header_mirrors_name_or_uri(self, method: str, params: dict[str, str], name: str) -> None:
        h.check_method_and_name({"mcp-method": method, "mcp-name": name}, method, params)
        with pytest.raises(h.HeaderMismatch):
            h.check_method_and_name({"mcp-method": method}, method, params)
        with pytest.raises(h.HeaderMismatch):
            h.check_method_and_name({"mcp-method": method, "mcp-name": "other"}, method, params)

    def test_name_header_is_not_needed_for_other_methods(self) -> None:
        h.check_method_and_name({"mcp-method": "tools/list"}, "tools/list", {"name": "ignored"})


class TestParameterHeaders:
    def test_only_statically_reachable_properties_designate_headers(self) -> None:
        assert h.header_parameters(REGION_SCHEMA) == {
            ("region",): "Region",
            ("count",): "Count",
            ("dry",): "Dry-Run",
            ("target", "zone"): "Zone",
        }

    def test_all_present_values_need_matching_headers(self) -> None:
        arguments = {"region": "Zürich", "count": 3, "dry": False, "query": "x", "target": {"zone": "b"}}
        headers = {
            "mcp-param-region": b64("Zürich"),
            "mcp-param-count": "3.0",
            "mcp-param-dry-run": "false",
            "mcp-param-zone": "b",
        }
        h.check_parameter_headers(headers, REGION_SCHEMA, arguments)

    def test_a_missing_header_for_a_present_value_is_rejected(self) -> None:
        with pytest.raises(h.HeaderMismatch, match="Mcp-Param-Region header is required"):
            h.check_parameter_headers({}, REGION_SCHEMA, {"region": "eu"})

    def test_null_or_absent_values_need_no_header_and_allow_none(self) -> None:
        h.check_parameter_headers({}, REGION_SCHEMA, {"region": None, "query": "x"})
        with pytest.raises(h.HeaderMismatch, match="absent or null"):
            h.check_parameter_headers({"mcp-param-region": "eu"}, REGION_SCHEMA, {"region": None})

    def test_mismatch_and_bad_encoding_are_rejected(self) -> None:
        with pytest.raises(h.HeaderMismatch):
            h.check_parameter_headers({"mcp-param-count": "4"}, REGION_SCHEMA, {"count": 3})
        with pytest.raises(h.HeaderMismatch):
            h.check_parameter_headers({"mcp-param-region": "=?base64?ZXU?="}, REGION_SCHEMA, {"region": "eu"})

    def test_integers_beyond_the_safe_range_are_rejected(self) -> None:
        big = 2**53 + 1
        with pytest.raises(h.HeaderMismatch, match="safe integer"):
            h.check_parameter_headers({"mcp-param-count": str(big)}, REGION_SCHEMA, {"count": big})

    @given(
        region=st.one_of(st.none(), st.text(max_size=40)),
        count=st.one_of(st.none(), st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)),
        dry=st.one_of(st.none(), st.booleans()),
    )
    def test_headers_a_conforming_client_builds_are_accepted(
        self, region: str | None, count: int | None, dry: bool | None
    ) -> None:
        arguments = {"region": region, "count": count, "dry": dry}
        names = {"region": "mcp-param-region", "count": "mcp-param-count", "dry": "mcp-param-dry-run"}
        headers = {}
        for key, header in names.items():
            text = h.header_text(arguments[key])
            if text is not None:
                headers[header] = h.encode_header_value(text)
        # What the transport hands over: trimmed values, lower-case names.
        collected = h.collect(headers.items())
        h.check_parameter_headers(collected, REGION_SCHEMA, arguments)

    @given(st.text(max_size=20), st.text(max_size=20))
    def test_a_different_string_is_always_rejected(self, body: str, other: str) -> None:
        if body == other:
            return
        headers = {"mcp-param-region": h.encode_header_value(other)}
        with pytest.raises(h.HeaderMismatch):
            h.check_parameter_headers(headers, REGION_SCHEMA, {"region": body})
