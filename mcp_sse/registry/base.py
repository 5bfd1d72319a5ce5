"""Base types for what a server offers: tools, resources, resource templates, prompts."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..conf import mcp_settings
from ..context import Context
from ..protocol import jsonutil
from ..protocol.errors import echo
from .results import error_result

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
TASK_MODES = (None, "optional", "required")


def task_mode(value: str | None) -> str | None:
    """A registration's ``task=`` value, checked (a typo must not silently run inline)."""
    if value not in TASK_MODES:
        raise ValueError(f'task= must be None, "optional" or "required", not {value!r}')
    return value


class Tool:
    """Something a client can call. Subclasses implement :meth:`call`."""

    kind = "function"
    name: str
    title: str | None = None
    description: str = ""
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    icons: list[dict[str, Any]] | None = None
    meta: dict[str, Any] | None = None
    # Argument names carried in Mcp-Param-* headers (2026): {argument: header suffix}.
    header_params: dict[str, str] | None = None
    # Whether a 2026-07-28 call that declares the tasks extension runs as a task: None (never),
    # "optional" (the server runs it as a task) or "required" (callers must declare the extension).
    task: str | None = None
    # Where such a task begins: "call" (at once) or "begin_task" (when the tool calls
    # ctx.begin_task(), after asking the client what it needs in the call's own rounds).
    task_starts: str = "call"
    # The model/permissions a model-backed tool needs; None for plain functions.
    required_permission: str | None = None
    source: str = ""

    def definition(self) -> dict[str, Any]:
        """The ``Tool`` object of ``tools/list``."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description or "",
            "inputSchema": self.input_schema,
        }
        if self.title:
            out["title"] = self.title
        if self.output_schema is not None:
            out["outputSchema"] = self.output_schema
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.icons:
            out["icons"] = list(self.icons)
        if self.meta:
            out["_meta"] = dict(self.meta)
        return out

    async def call(self, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Run the tool; return a ``CallToolResult`` dict. Tool failures are results with
        ``isError``; raise :class:`~mcp_sse.protocol.errors.MCPError` only for protocol faults."""
        raise NotImplementedError

    def declared_arguments(self) -> Collection[str]:
        """The argument names this tool takes: its input schema's properties."""
        return (self.input_schema or {}).get("properties") or {}

    async def run_call(self, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """What ``tools/call`` runs: the argument handling every tool shares, then :meth:`call`.

        Arguments named in ``DROP_EXTRA_ARGUMENTS`` that this tool does not declare are dropped
        (clients such as n8n add their own to every call). Text that is not Unicode (a lone
        UTF-16 surrogate, which JSON's ``\\uD800`` escapes can spell) is refused like any
        invalid argument: a tool error naming the argument, before the tool runs.
        """
        drop = mcp_settings.DROP_EXTRA_ARGUMENTS
        if drop and arguments:
            arguments = drop_extra_arguments(arguments, drop, self.declared_arguments())
        problems = not_unicode(arguments)
        if problems:
            return error_result("Invalid arguments:\n" + "\n".join(problems))
        return await self.call(arguments, ctx)


def drop_extra_arguments(
    arguments: dict[str, Any], names: Iterable[str], declared: Collection[str]
) -> dict[str, Any]:
    """``arguments`` without the ``names`` the tool does not declare (a new dict if any go)."""
    extra = [name for name in names if name in arguments and name not in declared]
    if not extra:
        return arguments
    return {key: value for key, value in arguments.items() if key not in extra}


def not_unicode(arguments: dict[str, Any]) -> list[str]:
    """One ``- path: ...`` line per argument (or argument name) holding a lone surrogate."""
    lines = []
    for path, text in jsonutil.unpaired_surrogates(arguments):
        where = ".".join(echo(part) if isinstance(part, str) else str(part) for part in path)
        index, char = next((i, c) for i, c in enumerate(text) if "\ud800" <= c <= "\udfff")
        lines.append(
            f"- {where}: not valid Unicode text: a lone UTF-16 surrogate (\\u{ord(char):04x}) at character {index}"
        )
    return lines


@dataclass
class Resource:
    uri: str
    name: str
    reader: Any  # callable(ctx) -> str | bytes | contents list
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: dict[str, Any] | None = None
    icons: list[dict[str, Any]] | None = None
    source: str = ""

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri, "name": self.name}
        for key, value in (
            ("title", self.title),
            ("description", self.description),
            ("mimeType", self.mime_type),
            ("size", self.size),
            ("annotations", self.annotations),
            ("icons", self.icons),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass
class ResourceTemplate:
    uri_template: str
    name: str
    reader: Any  # callable(ctx, **variables)
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: dict[str, Any] | None = None
    icons: list[dict[str, Any]] | None = None
    completions: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    _pattern: re.Pattern[str] | None = None

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uriTemplate": self.uri_template, "name": self.name}
        for key, value in (
            ("title", self.title),
            ("description", self.description),
            ("mimeType", self.mime_type),
            ("annotations", self.annotations),
            ("icons", self.icons),
        ):
            if value is not None:
                out[key] = value
        return out

    def match(self, uri: str) -> dict[str, str] | None:
        """Match a URI against this RFC 6570 level-1 template (``{var}`` segments)."""
        if self._pattern is None:
            regex = ""
            for part in re.split(r"(\{[^}]+\})", self.uri_template):
                if part.startswith("{") and part.endswith("}"):
                    regex += f"(?P<{part[1:-1].strip()}>[^/?#]+)"
                else:
                    regex += re.escape(part)
            self._pattern = re.compile(f"^{regex}$")
        found = self._pattern.match(uri)
        return found.groupdict() if found else None


@dataclass
class PromptArgument:
    name: str
    description: str | None = None
    required: bool = True

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "required": self.required}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Prompt:
    name: str
    renderer: Any  # callable(ctx?, **arguments) -> messages
    arguments: list[PromptArgument] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    icons: list[dict[str, Any]] | None = None
    completions: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.title:
            out["title"] = self.title
        out["description"] = self.description or ""
        if self.arguments:
            out["arguments"] = [a.definition() for a in self.arguments]
        if self.icons:
            out["icons"] = self.icons
        return out


class Registry:
    """Everything registered by code. A registry of definitions (like ``admin.site``),
    not live state: every worker builds the same one at import time."""

    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, Resource] = {}
        self.templates: dict[str, ResourceTemplate] = {}
        self.prompts: dict[str, Prompt] = {}
        # Problems found while registering; reported by system checks, never raised at import.
        self.problems: list[tuple[str, str]] = []

    # -- registration ---------------------------------------------------------------------
    def add_tool(self, tool: Tool) -> Tool:
        if not NAME_RE.match(tool.name or ""):
            self.problems.append(
                ("invalid-name", f"tool name {tool.name!r} ({tool.source}) must be 1-128 characters of [A-Za-z0-9_.-]")
            )
        if tool.name in self.tools and self.tools[tool.name] is not tool:
            self.problems.append(
                (
                    "duplicate",
                    f"tool {tool.name!r} is registered twice ({self.tools[tool.name].source} and {tool.source})",
                )
            )
            return tool
        self.tools[tool.name] = tool
        return tool

    def add_resource(self, resource: Resource) -> Resource:
        if resource.uri in self.resources and self.resources[resource.uri] is not resource:
            self.problems.append(("duplicate", f"resource {resource.uri!r} is registered twice"))
            return resource
        self.resources[resource.uri] = resource
        return resource

    def add_template(self, template: ResourceTemplate) -> ResourceTemplate:
        if template.uri_template in self.templates:
            self.problems.append(("duplicate", f"resource template {template.uri_template!r} is registered twice"))
            return template
        self.templates[template.uri_template] = template
        return template

    def add_prompt(self, prompt: Prompt) -> Prompt:
        if not NAME_RE.match(prompt.name or ""):
            self.problems.append(
                ("invalid-name", f"prompt name {prompt.name!r} must be 1-128 characters of [A-Za-z0-9_.-]")
            )
        if prompt.name in self.prompts and self.prompts[prompt.name] is not prompt:
            self.problems.append(("duplicate", f"prompt {prompt.name!r} is registered twice"))
            return prompt
        self.prompts[prompt.name] = prompt
        return prompt

    def remove_tool(self, name: str) -> None:
        self.tools.pop(name, None)

    def remove_prompt(self, name: str) -> None:
        self.prompts.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------
    def find_template(self, uri: str) -> tuple[ResourceTemplate, dict[str, str]] | None:
        for template in self.templates.values():
            variables = template.match(uri)
            if variables is not None:
                return template, variables
        return None

    def all_names(self) -> Iterable[tuple[str, str]]:
        for name in self.tools:
            yield "tool", name
        for uri in self.resources:
            yield "resource", uri
        for uri_template in self.templates:
            yield "template", uri_template
        for name in self.prompts:
            yield "prompt", name


default_registry = Registry()
