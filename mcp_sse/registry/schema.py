"""JSON Schema helpers: docstring parameter text, and the "flat" schema form some clients need."""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

_GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_PARAM = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[\w\[\], |]+\s+)?(\w+)\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Returns?|Raises|Yields|Examples?|Notes?)\s*:\s*$")


def split_docstring(func: Any) -> tuple[str, dict[str, str]]:
    """The description part of a docstring and per-parameter text (Google or Sphinx style)."""
    doc = inspect.getdoc(func) or ""
    description: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in doc.splitlines():
        if _GOOGLE_SECTION.match(line):
            in_args, current = True, None
            continue
        if _SECTION.match(line):
            in_args, current = False, None
            continue
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        if line.strip().startswith(":"):
            current = None
            continue
        if in_args:
            google = _GOOGLE_PARAM.match(line)
            if google and (len(line) - len(line.lstrip())) <= 4:
                current = google.group(1).lstrip("*")
                params[current] = google.group(3).strip()
            elif current and line.strip():
                params[current] = (params[current] + " " + line.strip()).strip()
            elif not line.strip():
                current = None
            continue
        if current and line.strip():
            params[current] = (params[current] + " " + line.strip()).strip()
            continue
        current = None
        description.append(line)
    return "\n".join(description).strip(), params


def strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keys from property schemas (noise for clients)."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip_titles(_drop_title(sub)) for name, sub in value.items()}
            else:
                out[key] = strip_titles(value)
        return out
    if isinstance(schema, list):
        return [strip_titles(item) for item in schema]
    return schema


def _drop_title(schema: Any) -> Any:
    if isinstance(schema, dict) and "title" in schema:
        return {k: v for k, v in schema.items() if k != "title"}
    return schema


def flatten_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline local ``$ref``s, collapse ``anyOf [X, null]`` to X and avoid type arrays.

    For clients (n8n's, some LLM gateways) that reject ``$ref``/``$defs`` or ``"type": [...]``.
    Recursive references cannot be inlined; they become an unconstrained object.
    """
    defs = dict(schema.get("$defs", {}))

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.split("/")[-1]
            if name in seen or name not in defs:
                return {"type": "object"}
            merged = copy.deepcopy(defs[name])
            merged.update({k: v for k, v in node.items() if k != "$ref"})
            return resolve(merged, (*seen, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$defs":
                continue
            out[key] = resolve(value, seen)
        for combinator in ("anyOf", "oneOf"):
            options = out.get(combinator)
            if isinstance(options, list):
                non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                if len(non_null) == 1 and len(non_null) < len(options):
                    del out[combinator]
                    base = dict(non_null[0])
                    base.update(out)
                    out = base
        if isinstance(out.get("type"), list):
            types = [t for t in out["type"] if t != "null"]
            out["type"] = types[0] if types else "string"
        return out

    flat = resolve(schema, ())
    assert isinstance(flat, dict)
    return flat
