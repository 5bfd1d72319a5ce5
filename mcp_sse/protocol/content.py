"""Content blocks a tool, prompt or resource can return.

Tools may return these objects (or lists of them); the registry turns them into wire dicts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any


def _b64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode("ascii")


@dataclass(slots=True)
class Text:
    text: str
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        return _with_annotations({"type": "text", "text": self.text}, self.annotations)


@dataclass(slots=True)
class Image:
    """An image; ``data`` is raw bytes or an already base64-encoded string."""

    data: bytes | str
    mime_type: str = "image/png"
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        block = {"type": "image", "data": _b64(self.data), "mimeType": self.mime_type}
        return _with_annotations(block, self.annotations)


@dataclass(slots=True)
class Audio:
    data: bytes | str
    mime_type: str = "audio/wav"
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        block = {"type": "audio", "data": _b64(self.data), "mimeType": self.mime_type}
        return _with_annotations(block, self.annotations)


@dataclass(slots=True)
class EmbeddedResource:
    """A resource inlined in a result: give ``text`` or ``blob`` (bytes)."""

    uri: str
    text: str | None = None
    blob: bytes | str | None = None
    mime_type: str | None = None
    annotations: dict[str, Any] | None = None

    def contents(self) -> dict[str, Any]:
        contents: dict[str, Any] = {"uri": self.uri}
        if self.mime_type:
            contents["mimeType"] = self.mime_type
        if self.blob is not None:
            contents["blob"] = _b64(self.blob)
        else:
            contents["text"] = self.text or ""
        return contents

    def to_block(self) -> dict[str, Any]:
        return _with_annotations({"type": "resource", "resource": self.contents()}, self.annotations)


@dataclass(slots=True)
class ResourceLink:
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None
    title: str | None = None
    annotations: dict[str, Any] | None = None

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "resource_link", "uri": self.uri, "name": self.name}
        if self.title:
            block["title"] = self.title
        if self.description:
            block["description"] = self.description
        if self.mime_type:
            block["mimeType"] = self.mime_type
        return _with_annotations(block, self.annotations)


@dataclass(slots=True)
class PromptMessage:
    role: str
    content: Text | Image | Audio | EmbeddedResource | ResourceLink | str

    def to_dict(self) -> dict[str, Any]:
        content = Text(self.content) if isinstance(self.content, str) else self.content
        return {"role": self.role, "content": content.to_block()}


ContentObject = Text | Image | Audio | EmbeddedResource | ResourceLink
CONTENT_TYPES = (Text, Image, Audio, EmbeddedResource, ResourceLink)


class ToolError(Exception):
    """Raise from a tool to return ``isError: true`` with this message (not a protocol error)."""

    def __init__(self, message: str, content: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.content = content or []


def _with_annotations(block: dict[str, Any], annotations: dict[str, Any] | None) -> dict[str, Any]:
    if annotations:
        block["annotations"] = annotations
    return block


@dataclass(slots=True)
class ToolResult:
    """Full control over a tool's result: content blocks, structured content, error flag."""

    content: list[Any]
    structured_content: Any = None
    is_error: bool = False
    meta: dict[str, Any] | None = None
