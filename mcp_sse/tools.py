"""The registration API site owners write against.

    from mcp_sse import tools

    @tools.tool(annotations={"readOnlyHint": True})
    async def find_books(ctx, query: str, limit: int = 10) -> list[BookOut]:
        ...

Put registrations in ``<app>/mcp_tools.py``; they are imported at startup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .context import Context, SyncContext
from .protocol.content import (
    Audio,
    EmbeddedResource,
    Image,
    PromptMessage,
    ResourceLink,
    Text,
    ToolError,
    ToolResult,
)
from .registry.base import Registry, default_registry
from .registry.functions import (
    FunctionPrompt,
    FunctionResource,
    FunctionTemplate,
    FunctionTool,
    prompt_arguments,
)
from .registry.schema import split_docstring

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "Audio",
    "Context",
    "EmbeddedResource",
    "Image",
    "PromptMessage",
    "ResourceLink",
    "SyncContext",
    "Text",
    "ToolError",
    "ToolResult",
    "prompt",
    "resource",
    "resource_template",
    "tool",
]


def tool(
    func: F | None = None,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    annotations: dict[str, Any] | None = None,
    icons: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    structured_output: bool | None = None,
    registry: Registry | None = None,
) -> Any:
    """Register a function as a tool. Usable bare (``@tool``) or with options (``@tool(...)``).

    The function is returned unchanged, so it stays callable and testable on its own.
    """

    def register(f: F) -> F:
        (registry or default_registry).add_tool(
            FunctionTool(
                f,
                name=name,
                title=title,
                description=description,
                annotations=annotations,
                icons=icons,
                meta=meta,
                input_schema=input_schema,
                output_schema=output_schema,
                structured_output=structured_output,
            )
        )
        return f

    return register(func) if func is not None else register


def resource(
    uri: str,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    mime_type: str | None = None,
    annotations: dict[str, Any] | None = None,
    icons: list[dict[str, Any]] | None = None,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Register a function returning a resource's content (str, bytes, or content objects)."""

    def register(f: F) -> F:
        doc, _ = split_docstring(f)
        (registry or default_registry).add_resource(
            FunctionResource(
                uri=uri,
                name=name or f.__name__,
                reader=f,
                title=title,
                description=description if description is not None else (doc or None),
                mime_type=mime_type,
                annotations=annotations,
                icons=icons,
                source=f"{f.__module__}.{f.__qualname__}",
            )
        )
        return f

    return register


def resource_template(
    uri_template: str,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    mime_type: str | None = None,
    completions: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Register a function serving every URI matching ``uri_template`` (``{var}`` segments
    become keyword arguments)."""

    def register(f: F) -> F:
        doc, _ = split_docstring(f)
        (registry or default_registry).add_template(
            FunctionTemplate(
                uri_template=uri_template,
                name=name or f.__name__,
                reader=f,
                title=title,
                description=description if description is not None else (doc or None),
                mime_type=mime_type,
                completions=dict(completions or {}),
                source=f"{f.__module__}.{f.__qualname__}",
            )
        )
        return f

    return register


def prompt(
    func: F | None = None,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    icons: list[dict[str, Any]] | None = None,
    completions: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> Any:
    """Register a prompt; its parameters are the prompt's arguments. ``completions`` maps an
    argument name to a list of values or a callable ``(value, context_arguments) -> list``."""

    def register(f: F) -> F:
        doc, param_docs = split_docstring(f)
        (registry or default_registry).add_prompt(
            FunctionPrompt(
                name=name or f.__name__,
                renderer=f,
                arguments=prompt_arguments(f, param_docs),
                title=title,
                description=description if description is not None else doc,
                icons=icons,
                completions=dict(completions or {}),
                source=f"{f.__module__}.{f.__qualname__}",
            )
        )
        return f

    return register(func) if func is not None else register
