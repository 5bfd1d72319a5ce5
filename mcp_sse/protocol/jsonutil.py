"""One strict JSON codec for everything that crosses the wire.

Strict means: no NaN/Infinity in either direction (they are not JSON and several clients
reject them), compact separators, UTF-8 bytes out.
"""

from __future__ import annotations

import json
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
    return dumps_str(obj).encode("utf-8")


def dumps_str(obj: Any) -> str:
    """``obj`` as compact JSON text; NaN, Infinity and circular structures raise ``ValueError``,
    values JSON has no type for ``TypeError``."""
    if _c_encode is None:
        return _encoder.encode(obj)
    try:
        return "".join(_c_encode(obj, 0))
    except RecursionError:
        raise ValueError("Circular reference detected (or a structure nested too deeply)") from None
