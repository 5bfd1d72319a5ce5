"""Turning what user code returns into wire results."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from pydantic import BaseModel, TypeAdapter

from ..protocol import jsonutil
from ..protocol.content import CONTENT_TYPES, EmbeddedResource, PromptMessage, Text, ToolResult


def to_jsonable(value: Any) -> Any:
    """Plain JSON values from pydantic models, dataclasses, enums, dates and containers."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    return TypeAdapter(type(value)).dump_python(value, mode="json")


def is_content(value: Any) -> bool:
    return isinstance(value, CONTENT_TYPES)


def content_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Content blocks when ``value`` is content (or a list of content and strings), else None."""
    if isinstance(value, str):
        return [Text(value).to_block()]
    if is_content(value):
        return [value.to_block()]
    if isinstance(value, list | tuple) and value and all(is_content(v) or isinstance(v, str) for v in value):
        return [Text(v).to_block() if isinstance(v, str) else v.to_block() for v in value]
    return None


def tool_result(value: Any, *, wrap_output: bool, has_output_schema: bool) -> dict[str, Any]:
    """A ``CallToolResult`` for a tool's return value.

    Structured values always get a text block too (the JSON), for clients that read only
    ``content``.
    """
    if isinstance(value, ToolResult):
        result: dict[str, Any] = {
            "content": [c if isinstance(c, dict) else (content_blocks(c) or [])[0] for c in value.content]
        }
        if value.structured_content is not None:
            result["structuredContent"] = to_jsonable(value.structured_content)
        if value.is_error:
            result["isError"] = True
        if value.meta:
            result["_meta"] = value.meta
        return result
    if value is None and not has_output_schema:
        return {"content": []}
    blocks = None if has_output_schema else content_blocks(value)
    if blocks is not None:
        return {"content": blocks}
    data = to_jsonable(value)
    structured = {"result": data} if wrap_output else data
    result = {"content": [{"type": "text", "text": jsonutil.dumps_str(data)}]}
    if has_output_schema or isinstance(structured, dict):
        result["structuredContent"] = structured
    return result


def error_result(message: str, extra: list[Any] | None = None) -> dict[str, Any]:
    content = [{"type": "text", "text": message}]
    for item in extra or []:
        blocks = content_blocks(item)
        if blocks:
            content.extend(blocks)
    return {"content": content, "isError": True}


def resource_contents(uri: str, value: Any, mime_type: str | None) -> list[dict[str, Any]]:
    """``resources/read`` contents from what a reader returned."""
    if isinstance(value, EmbeddedResource):
        return [value.contents()]
    if isinstance(value, list) and all(isinstance(v, EmbeddedResource) for v in value):
        return [v.contents() for v in value]
    if isinstance(value, bytes | bytearray):
        return [EmbeddedResource(uri, blob=bytes(value), mime_type=mime_type or "application/octet-stream").contents()]
    if not isinstance(value, str):
        value = jsonutil.dumps_str(to_jsonable(value))
        mime_type = mime_type or "application/json"
    return [EmbeddedResource(uri, text=value, mime_type=mime_type or "text/plain").contents()]


def prompt_messages(value: Any) -> list[dict[str, Any]]:
    """``prompts/get`` messages from what a prompt function returned."""
    items = value if isinstance(value, list | tuple) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, PromptMessage):
            out.append(item.to_dict())
        elif isinstance(item, str) or is_content(item):
            out.append(PromptMessage("user", item).to_dict())
        elif isinstance(item, dict) and "role" in item:
            out.append(item)
        else:
            raise TypeError(f"a prompt returned {type(item).__name__}; expected str, content or PromptMessage")
    return out
