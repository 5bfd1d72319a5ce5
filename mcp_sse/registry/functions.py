"""Function-backed tools, resources and prompts: schemas and validation from type hints."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, get_type_hints

from channels.db import database_sync_to_async
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from ..conf import mcp_settings
from ..context import Context, SyncContext
from ..protocol.content import CONTENT_TYPES, ToolError, ToolResult
from ..protocol.errors import echo
from .base import Prompt, PromptArgument, Resource, ResourceTemplate, Tool, task_mode
from .results import error_result, prompt_messages, resource_contents, tool_result
from .schema import flatten_schema, split_docstring, strip_titles
from .threads import tool_threads

CONTEXT_PARAM_NAMES = ("ctx", "context")


def _is_context_annotation(annotation: Any) -> bool:
    return annotation in (Context, SyncContext) or (
        isinstance(annotation, str) and annotation.split(".")[-1] in ("Context", "SyncContext")
    )


def _context_param(sig: inspect.Signature, hints: dict[str, Any]) -> str | None:
    for name, param in sig.parameters.items():
        if _is_context_annotation(hints.get(name, param.annotation)):
            return name
    for name in CONTEXT_PARAM_NAMES:
        if name in sig.parameters and name not in hints:
            return name
    return None


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(func, include_extras=True)
    except Exception:
        return {}


def build_arguments_model(func: Callable[..., Any], *, skip: str | None, param_docs: dict[str, str]) -> type[BaseModel]:
    """A pydantic model whose fields are the function's parameters (minus the context)."""
    sig = inspect.signature(func)
    hints = _hints(func)
    fields: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if name == skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any if param.annotation is param.empty else param.annotation)
        default = ... if param.default is param.empty else param.default
        doc = param_docs.get(name)
        if isinstance(default, FieldInfo):
            field = default
        else:
            field = FieldInfo.from_annotated_attribute(annotation, default)
            annotation = field.annotation if field.annotation is not None else annotation
        if doc and not field.description:
            field.description = doc
        fields[name] = (annotation, field)
    model_name = "".join(part.title() for part in func.__name__.split("_")) + "Arguments"
    return create_model(model_name, __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)


def input_schema_for(model: type[BaseModel]) -> dict[str, Any]:
    schema = strip_titles(model.model_json_schema())
    schema.pop("title", None)
    schema.setdefault("properties", {})
    schema["type"] = "object"
    if mcp_settings.FLAT_SCHEMAS:
        schema = flatten_schema(schema)
    return schema


_NO_OUTPUT_SCHEMA = (str, type(None), ToolResult, *CONTENT_TYPES)


def output_schema_for(func: Callable[..., Any]) -> tuple[dict[str, Any] | None, bool]:
    """(outputSchema, wrapped): ``wrapped`` when a non-object result is nested under "result"."""
    annotation = _hints(func).get("return", inspect.Signature.empty)
    if annotation in (inspect.Signature.empty, Any) or annotation in _NO_OUTPUT_SCHEMA:
        return None, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    # Lists/unions of content (or of Any) are content, not structured output.
    if (
        origin in (list, typing.Union, types.UnionType)
        and args
        and all(a in _NO_OUTPUT_SCHEMA or a is Any for a in args)
    ):
        return None, False
    try:
        schema = strip_titles(TypeAdapter(annotation).json_schema(mode="serialization"))
    except Exception:
        return None, False
    if schema.get("type") == "object" or (
        "$ref" in schema and schema.get("$defs", {}).get(schema["$ref"].split("/")[-1], {}).get("type") == "object"
    ):
        schema.pop("title", None)
        if "$ref" in schema:
            schema = {"$defs": schema.get("$defs", {}), "allOf": [{"$ref": schema["$ref"]}], "type": "object"}
        result = schema
        wrapped = False
    else:
        defs = schema.pop("$defs", None)
        result = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
        if defs:
            result["$defs"] = defs
        wrapped = True
    # Output schemas are never flattened: flattening drops "null" from types, and clients
    # validate results against the schema.
    return result, wrapped


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(echo(str(p)) for p in err.get("loc", ())) or "(arguments)"
        lines.append(f"- {where}: {err.get('msg', 'invalid')}")
    return "Invalid arguments:\n" + "\n".join(lines)


class FunctionTool(Tool):
    """A tool backed by a Python function (sync or async)."""

    kind = "function"

    def __init__(
        self,
        func: Callable[..., Any],
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
    ) -> None:
        self.func = func
        self.task = task_mode(task)
        if task_starts not in ("call", "begin_task"):
            raise ValueError(f'task_starts= must be "call" or "begin_task", not {task_starts!r}')
        self.task_starts = task_starts
        self.name = name or func.__name__
        self.title = title
        doc_description, param_docs = split_docstring(func)
        self.description = description if description is not None else doc_description
        self.annotations = annotations
        self.icons = icons
        self.meta = meta
        self.is_async = inspect.iscoroutinefunction(func)
        sig = inspect.signature(func)
        self.context_param = _context_param(sig, _hints(func))
        self.arguments_model = build_arguments_model(func, skip=self.context_param, param_docs=param_docs)
        self.param_names = [n for n in self.arguments_model.model_fields]
        # An explicit schema is served verbatim (validation still uses the type hints).
        self.input_schema = input_schema if input_schema is not None else input_schema_for(self.arguments_model)
        self.header_params = _header_params(self.input_schema)
        if structured_output is False:
            self.output_schema, self.wrap_output = None, False
        elif output_schema is not None:
            self.output_schema, self.wrap_output = output_schema, False
        else:
            self.output_schema, self.wrap_output = output_schema_for(func)
        self.source = f"{func.__module__}.{func.__qualname__}"

    def declared_arguments(self) -> list[str]:
        # What validation accepts, which an explicit input_schema need not list.
        return self.param_names

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        validated = self.arguments_model.model_validate(arguments)
        return {name: getattr(validated, name) for name in self.param_names}

    async def call(self, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        try:
            kwargs = self.validate(arguments)
        except ValidationError as exc:
            return error_result(format_validation_error(exc))
        try:
            value = await self.invoke(kwargs, ctx)
        except ToolError as exc:
            return error_result(exc.message, exc.content)
        return tool_result(value, wrap_output=self.wrap_output, has_output_schema=self.output_schema is not None)

    async def invoke(self, kwargs: dict[str, Any], ctx: Context) -> Any:
        if self.is_async:
            if self.context_param:
                kwargs[self.context_param] = ctx
            return await self.func(**kwargs)
        # A thread pool, not the single thread Django's sync_to_async serialises everything on:
        # concurrent calls of a sync tool run in parallel threads (each with its own DB connection).
        if self.context_param:
            # SyncContext blocks on the event loop through async_to_sync, which needs asgiref's
            # bookkeeping of the calling loop: the full SyncToAsync path.
            kwargs[self.context_param] = SyncContext(ctx)
            return await database_sync_to_async(self.func, thread_sensitive=False)(**kwargs)
        return await run_in_thread(self.func, kwargs)


async def run_in_thread(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run a sync function on the tool thread pool, with Django's connection hygiene around it.

    Lighter than ``sync_to_async`` and than ``run_in_executor`` (see :mod:`.threads`): for
    functions that never call back into the event loop.
    """
    return await tool_threads.run(func, kwargs)


def _header_params(schema: dict[str, Any]) -> dict[str, str] | None:
    found = {
        name: prop["x-mcp-header"]
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, dict) and isinstance(prop.get("x-mcp-header"), str)
    }
    return found or None


async def call_user_function(func: Callable[..., Any], ctx: Context, kwargs: dict[str, Any]) -> Any:
    """Call a resource reader / prompt renderer, passing the context if it asks for one."""
    sig = inspect.signature(func)
    ctx_name = _context_param(sig, _hints(func))
    accepted = {k: v for k, v in kwargs.items() if k in sig.parameters or _has_var_kw(sig)}
    if inspect.iscoroutinefunction(func):
        if ctx_name:
            accepted[ctx_name] = ctx
        return await func(**accepted)
    if ctx_name:
        accepted[ctx_name] = SyncContext(ctx)
        return await database_sync_to_async(func, thread_sensitive=False)(**accepted)
    return await run_in_thread(func, accepted)


def _has_var_kw(sig: inspect.Signature) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


class FunctionResource(Resource):
    async def read(self, ctx: Context) -> list[dict[str, Any]]:
        value = await call_user_function(self.reader, ctx, {}) if callable(self.reader) else self.reader
        return resource_contents(self.uri, value, self.mime_type)


class FunctionTemplate(ResourceTemplate):
    async def read(self, uri: str, variables: dict[str, str], ctx: Context) -> list[dict[str, Any]]:
        value = await call_user_function(self.reader, ctx, {**variables, "uri": uri})
        return resource_contents(uri, value, self.mime_type)


class FunctionPrompt(Prompt):
    async def render(self, arguments: dict[str, str], ctx: Context) -> dict[str, Any]:
        value = await call_user_function(self.renderer, ctx, dict(arguments))
        if isinstance(value, dict) and "messages" in value:
            return value
        result: dict[str, Any] = {"messages": prompt_messages(value)}
        if self.description:
            result["description"] = self.description
        return result


def prompt_arguments(func: Callable[..., Any], param_docs: dict[str, str]) -> list[PromptArgument]:
    sig = inspect.signature(func)
    ctx_name = _context_param(sig, _hints(func))
    return [
        PromptArgument(name, param_docs.get(name), required=param.default is param.empty)
        for name, param in sig.parameters.items()
        if name != ctx_name and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    ]
