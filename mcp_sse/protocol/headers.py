"""Request headers that mirror the JSON-RPC body (2026-07-28 Streamable HTTP, SEP-2243).

A modern client repeats parts of the body in headers so that load balancers and gateways can
route without parsing JSON: ``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name`` and one
``Mcp-Param-{Name}`` per tool argument whose schema property carries ``"x-mcp-header"``. A
server that reads the body must reject any disagreement (HTTP 400, JSON-RPC -32020), or the
proxy and the server could act on different values.

Rules implemented here (spec ``basic/transports/streamable-http.mdx``, "Request Metadata"):

- header names are case-insensitive, values case-sensitive; surrounding spaces/tabs are trimmed;
- a value must consist of visible ASCII, space and tab; anything else is rejected;
- ``Mcp-Name`` and ``Mcp-Param-*`` values may be ``=?base64?<standard base64 of UTF-8>?=``; the
  payload is decoded strictly (alphabet, padding, canonical trailing bits, UTF-8) before
  comparing; a value without both markers is taken literally;
- integers compare numerically (``42`` equals ``42.0``), booleans as ``true``/``false``;
- a body value that is present (not null) needs its header; a null or absent value needs none.

Pure Python: the transport passes the raw header pairs and the parsed body.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import echo

PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
PARAM_HEADER_PREFIX = "mcp-param-"
X_MCP_HEADER = "x-mcp-header"

# Which body field Mcp-Name mirrors, per method.
NAME_FIELDS = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    # The tasks extension: Mcp-Name carries the task id, so a load balancer can route by it.
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}

BASE64_PREFIX = "=?base64?"
BASE64_SUFFIX = "?="

# RFC 9110 field-value characters: visible ASCII, space and horizontal tab.
_FIELD_VALUE = re.compile(r"^[\x21-\x7e \t]*$")
# RFC 9110 token characters (for the x-mcp-header name part).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BASE64_ALPHABET = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
# JavaScript's safe integer range, the limit the spec sets for integer header parameters.
MAX_SAFE_INTEGER = 2**53 - 1


class HeaderMismatch(ValueError):
    """A mirrored header is missing, malformed or disagrees with the body (-32020)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- values ------------------------------------------------------------------------------
def is_valid_field_value(value: str) -> bool:
    return bool(_FIELD_VALUE.match(value))


def needs_base64(value: str) -> bool:
    """Whether a value cannot travel as a plain header value (or would be mistaken for one)."""
    return (
        not is_valid_field_value(value)
        or value != value.strip(" \t")
        or "\t" in value
        or (value.startswith(BASE64_PREFIX) and value.endswith(BASE64_SUFFIX))
    )


def encode_header_value(value: str) -> str:
    """The header form of ``value``: as-is when safe, else the Base64 sentinel form."""
    if needs_base64(value):
        return BASE64_PREFIX + base64.b64encode(value.encode("utf-8")).decode("ascii") + BASE64_SUFFIX
    return value


def decode_header_value(raw: str) -> str:
    """The value a (trimmed) header carries; :class:`HeaderMismatch` when it is malformed."""
    if not is_valid_field_value(raw):
        raise HeaderMismatch("header value contains characters not allowed in HTTP field values")
    if not (raw.startswith(BASE64_PREFIX) and raw.endswith(BASE64_SUFFIX) and len(raw) >= 11):
        return raw
    payload = raw[len(BASE64_PREFIX) : -len(BASE64_SUFFIX)]
    if len(payload) % 4 or not _BASE64_ALPHABET.match(payload):
        raise HeaderMismatch("header value is not valid Base64 (bad padding or characters)")
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise HeaderMismatch("header value is not valid Base64") from None
    if base64.b64encode(decoded).decode("ascii") != payload:
        raise HeaderMismatch("header value is not canonical Base64")
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderMismatch("Base64 header value is not UTF-8") from None


def header_text(value: Any) -> str | None:
    """How a primitive body value is written in a header (None: no header for it)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    return None


def value_matches(header_value: str, body_value: Any) -> bool:
    """Whether a decoded header value equals a body value (numbers numerically)."""
    if isinstance(body_value, bool):
        return header_value == ("true" if body_value else "false")
    if isinstance(body_value, int | float):
        try:
            number = Decimal(header_value)
        except InvalidOperation:
            return False
        return number.is_finite() and number == Decimal(str(body_value))
    if isinstance(body_value, str):
        return header_value == body_value
    return False


# -- header collection -------------------------------------------------------------------
def collect(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names to trimmed values; a repeated ``MCP-*`` header is ambiguous: rejected."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in headers and key.startswith("mcp-"):
            raise HeaderMismatch(f"header {echo(name)} is sent more than once")
        headers[key] = value.strip(" \t")
    return headers


# -- standard headers --------------------------------------------------------------------
def check_protocol_version(headers: Mapping[str, str], body_version: str) -> None:
    header = headers.get(PROTOCOL_VERSION_HEADER)
    if header is None or header == "":
        raise HeaderMismatch("the MCP-Protocol-Version header is required")
    if header != body_version:
        raise HeaderMismatch(
            f"MCP-Protocol-Version header {echo(header, quoted=True)} does not match _meta protocolVersion "
            f"{echo(body_version, quoted=True)}"
        )


def check_method_and_name(headers: Mapping[str, str], method: str, params: Mapping[str, Any]) -> None:
    """``Mcp-Method`` always; ``Mcp-Name`` for the methods that name a tool, prompt or resource."""
    header_method = headers.get(METHOD_HEADER)
    if header_method is None or header_method == "":
        raise HeaderMismatch("the Mcp-Method header is required")
    if not is_valid_field_value(header_method):
        raise HeaderMismatch("the Mcp-Method header contains invalid characters")
    if header_method != method:
        raise HeaderMismatch(
            f"Mcp-Method header {echo(header_method, quoted=True)} does not match the body method "
            f"{echo(method, quoted=True)}"
        )
    field = NAME_FIELDS.get(method)
    if field is None:
        return
    body_name = params.get(field)
    raw_name = headers.get(NAME_HEADER)
    if raw_name is None or raw_name == "":
        if isinstance(body_name, str):
            raise HeaderMismatch(f"the Mcp-Name header is required for {echo(method)}")
        return  # the body is invalid anyway; the handler reports that
    name = decode_header_value(raw_name)
    if name != body_name:
        raise HeaderMismatch(
            f"Mcp-Name header {echo(name, quoted=True)} does not match the body {field} {echo(body_name, quoted=True)}"
        )


# -- x-mcp-header parameters -------------------------------------------------------------
def header_parameters(input_schema: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """Argument paths whose schema property carries ``x-mcp-header``, with the header name.

    Only properties reachable through a chain of ``properties`` keys count (the spec makes an
    annotation anywhere else invalid; such annotations are ignored here).
    """
    found: dict[tuple[str, ...], str] = {}
    for path, name in _walk_properties(input_schema, ()):
        found[path] = name
    return found


def _walk_properties(schema: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for key, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        path = (*prefix, str(key))
        name = prop.get(X_MCP_HEADER)
        if isinstance(name, str) and _TOKEN.match(name):
            found_type = prop.get("type")
            if found_type in ("string", "integer", "boolean") or found_type is None:
                yield path, name
        yield from _walk_properties(prop, path)


def _value_at(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = arguments
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def check_parameter_headers(
    headers: Mapping[str, str], input_schema: Mapping[str, Any], arguments: Mapping[str, Any]
) -> None:
    """Every ``Mcp-Param-{Name}`` the tool's schema designates must mirror its argument."""
    for path, name in header_parameters(input_schema).items():
        header_name = PARAM_HEADER_PREFIX + name.lower()
        raw = headers.get(header_name)
        body_value = _value_at(arguments, path)
        label = f"Mcp-Param-{name}"
        if body_value is None:
            if raw is not None:
                raise HeaderMismatch(f"{label} is sent but argument {'.'.join(path)!r} is absent or null")
            continue
        if raw is None:
            raise HeaderMismatch(f"{label} header is required: argument {'.'.join(path)!r} is set in the body")
        value = decode_header_value(raw)
        if isinstance(body_value, int) and not isinstance(body_value, bool) and abs(body_value) > MAX_SAFE_INTEGER:
            raise HeaderMismatch(f"argument {'.'.join(path)!r} is outside the safe integer range for {label}")
        if not value_matches(value, body_value):
            raise HeaderMismatch(f"{label} header does not match argument {'.'.join(path)!r}")
