"""Server-Sent Events framing (WHATWG HTML, "server-sent events").

Field values must not contain CR, LF or NUL: a stray newline in an ``event`` or ``id`` would
start a new field (header injection into the stream), so those are stripped; ``data`` is split
into one ``data:`` line per line, which the client joins back with ``\\n``.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\r\n\0]")
_LINES = re.compile(r"\r\n|\r|\n")


def _field(value: str) -> str:
    return _UNSAFE.sub("", value)


def encode_event(
    data: str | None = None,
    *,
    event: str | None = None,
    event_id: str | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """Encode one SSE event; ``data=""`` sends an event with empty data (a priming event)."""
    parts: list[str] = []
    if event_id is not None:
        parts.append(f"id: {_field(event_id)}\n")
    if event is not None:
        parts.append(f"event: {_field(event)}\n")
    if retry_ms is not None:
        parts.append(f"retry: {int(retry_ms)}\n")
    if data is not None:
        for line in _LINES.split(data):
            parts.append(f"data: {line.replace(chr(0), '')}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment line; clients ignore it, proxies see traffic (keep-alive)."""
    return f": {_field(text)}\n\n".encode()
