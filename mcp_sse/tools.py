"""The registration API site owners write against.

    from mcp_sse import tools

    @tools.tool(annotations={"readOnlyHint": True})
    async def find_books(ctx, query: str, limit: int = 10) -> list[BookOut]:
        ...

Put registrations in ``<app>/mcp_tools.py``; they are imported at startup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from .registry.base import Tool

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
    "register_model",
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
    task: str | None = None,
    task_starts: str = "call",
    registry: Registry | None = None,
) -> Any:
    """Register a function as a tool. Usable bare (``@tool``) or with options (``@tool(...)``).

    ``task="optional"`` runs a 2026-07-28 call as a task (the client gets a task id at once and
    polls ``tasks/get``) when the call declares the tasks extension, and inline otherwise;
    ``task="required"`` refuses callers that do not declare it (-32021). Calls on older
    revisions always run inline. ``task_starts="begin_task"`` keeps the call inline until the
    tool calls ``ctx.begin_task()`` (questions before it use the call's own input-required
    rounds). The function is returned unchanged, so it stays callable and
    testable on its own.
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
                task=task,
                task_starts=task_starts,
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


def register_model(
    model: Any,
    *,
    serializer: Any = None,
    actions: Iterable[str] = ("list", "get", "create", "update", "delete"),
    name_prefix: str | None = None,
    filter_fields: Iterable[str] = (),
    search_fields: Iterable[str] = (),
    ordering_fields: Iterable[str] = (),
    max_page_size: int = 100,
    default_page_size: int | None = None,
    queryset: Any = None,
    annotations: dict[str, dict[str, Any]] | None = None,
    task: str | dict[str, str] | None = None,
    registry: Registry | None = None,
) -> list[Tool]:
    """Register tools for a Django model: ``<prefix>_list``, ``_get``, ``_create``, ``_update``
    (partial) and ``_delete``, validated and rendered by the DRF ``serializer`` (default: a
    ModelSerializer with all fields).

    - ``name_prefix``: defaults to the model's class name in snake case (``Book`` -> ``book``).
    - ``filter_fields`` / ``search_fields`` / ``ordering_fields``: field names or ``__`` paths
      the list tool accepts as exact filters, searches (``icontains``, every word must match)
      and sort keys. Nothing else is filterable or sortable.
    - ``max_page_size`` bounds ``limit``; ``default_page_size`` (20) applies when it is absent.
    - ``queryset``: the rows a caller may touch, as ``callable(user) -> QuerySet`` or the name of
      a method of the model's default manager taking the user. Other rows are "not found".
    - ``annotations``: per-action overrides of the automatic hints, e.g. ``{"delete": {...}}``.
    - ``task``: ``"optional"``/``"required"`` for every action, or per action
      (``{"list": "optional"}``), as for :func:`tool`.

    Each call needs the caller's model permission (``view`` for list/get, ``add``, ``change``,
    ``delete``). Returns the registered tools.
    """
    from .registry.model_tools import build_model_tools  # DRF needs the app registry: import late

    target = registry or default_registry
    built = build_model_tools(
        model,
        serializer=serializer,
        actions=actions,
        name_prefix=name_prefix,
        filter_fields=filter_fields,
        search_fields=search_fields,
        ordering_fields=ordering_fields,
        max_page_size=max_page_size,
        default_page_size=default_page_size,
        queryset=queryset,
        annotations=annotations,
        problems=target.problems,
    )
    from .registry.base import task_mode

    for model_tool in built:
        model_tool.task = task_mode(task.get(model_tool.action) if isinstance(task, dict) else task)
        target.add_tool(model_tool)
    return list(built)
