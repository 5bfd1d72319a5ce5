"""One strict JSON codec for everything that crosses the wire.

Strict means: no NaN/Infinity in either direction (they are not JSON and several clients
reject them), compact separators, UTF-8 bytes out.

JSON's ``\\uD800``-style escapes can spell a lone UTF-16 surrogate, which decodes to a Python
string that is not Unicode text: it cannot be encoded as UTF-8, so echoing it would crash the
encoder. Output therefore keeps such a code point as the same ``\\uXXXX`` escape it came in as
(valid JSON, and what a client's decoder gives back), and :func:`unpaired_surrogates` finds them
in a decoded value for code that must refuse them.
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONDecodeError(ValueError):
    """The bytes are not a single valid JSON document."""


def _reject_constant(name: str) -> Any:
    raise JSONDecodeError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# The C encoder that JSONEncoder.encode() builds afresh for every call, built once (a third of
# the cost of encoding a small message). Without a markers dict it keeps no per-call state; a
# circular structure then ends in RecursionError instead of ValueError (handled below).
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    _c_make_encoder(
        None,  # no circular-reference markers
        _encoder.default,
        json.encoder.encode_basestring,  # what JSONEncoder picks for ensure_ascii=False
        _encoder.indent,
        _encoder.key_separator,
        _encoder.item_separator,
        _encoder.sort_keys,
        _encoder.skipkeys,
        _encoder.allow_nan,
    )
    if _c_make_encoder is not None and not _encoder.ensure_ascii
    else None
)


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raise :class:`JSONDecodeError` on anything else."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONDecodeError(f"body is not UTF-8: {exc.reason}") from None
    else:
        text = data
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise JSONDecodeError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise JSONDecodeError("document nests too deeply") from None


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON; NaN and Infinity raise ``ValueError``."""
    text = _encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _escape_surrogates(text).encode("utf-8")


def dumps_str(obj: Any) -> str:
    """``obj`` as compact JSON text; NaN, Infinity and circular structures raise ``ValueError``,
    values JSON has no type for ``TypeError``. The text always encodes as UTF-8 (lone
    surrogates stay ``\\uXXXX`` escapes)."""
    text = _encode(obj)
    if text.isascii():  # O(1): a flag of the string, and the common case
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _escape_surrogates(text)
    return text


def _encode(obj: Any) -> str:
    if _c_encode is None:
        return _encoder.encode(obj)
    try:
        return "".join(_c_encode(obj, 0))
    except RecursionError:
        raise ValueError("Circular reference detected (or a structure nested too deeply)") from None


def _escape_surrogates(text: str) -> str:
    # Surrogates are the only code points UTF-8 cannot encode, and in JSON text they only occur
    # inside strings, where "\uDXXX" is the escape for exactly that code point.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_SURROGATE = re.compile("[\ud800-\udfff]")


def unpaired_surrogates(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Where a decoded JSON value holds lone surrogates: ``(path, text)`` for each string (key or
    value) that has one, with ``path`` the keys and indexes leading to it (a key's own path ends
    with the key). Text without a non-ASCII character is never checked character by character."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            found.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                found.append(((*path, key), key))
            if not isinstance(item, int | float | bool | None):
                found.extend(unpaired_surrogates(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, int | float | bool | None):
                found.extend(unpaired_surrogates(item, (*path, index)))
    return found
