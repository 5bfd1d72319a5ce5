"""The fixtures of the official conformance suite (names and texts are what its checks expect)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import wave
from typing import Any

from mcp_sse import tools
from mcp_sse.notify import anotify_resource_updated

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<" + "h" * 80, *([0] * 80)))
    return buffer.getvalue()


WAV = _wav()


@tools.tool
def test_simple_text() -> str:
    """Returns a simple text response."""
    return "This is a simple text response for testing."


@tools.tool
def test_image_content() -> tools.Image:
    """Returns an image."""
    return tools.Image(PNG_1PX, "image/png")


@tools.tool
def test_audio_content() -> tools.Audio:
    """Returns audio."""
    return tools.Audio(WAV, "audio/wav")


@tools.tool
def test_embedded_resource() -> tools.EmbeddedResource:
    """Returns an embedded resource."""
    return tools.EmbeddedResource(
        "test://embedded-resource", text="This is an embedded resource content.", mime_type="text/plain"
    )


@tools.tool
def test_multiple_content_types() -> list[Any]:
    """Returns text, an image and an embedded resource."""
    return [
        tools.Text("Multiple content types test:"),
        tools.Image(PNG_1PX, "image/png"),
        tools.EmbeddedResource(
            "test://mixed-content-resource", text='{"test":"data","value":123}', mime_type="application/json"
        ),
    ]


@tools.tool
async def test_tool_with_logging(ctx: tools.Context) -> str:
    """Sends log messages while it runs."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@tools.tool
async def test_tool_with_progress(ctx: tools.Context) -> str:
    """Reports progress 0, 50, 100."""
    for value in (0, 50, 100):
        await ctx.report_progress(value, 100, f"Completed step {value // 50 + 1} of 3")
        await asyncio.sleep(0.05)
    return "Tool with progress executed successfully"


@tools.tool
def test_error_handling() -> tools.ToolResult:
    """Always fails (as a tool error, not a protocol error)."""
    raise tools.ToolError("This tool intentionally returns an error for testing")


@tools.tool
async def test_sampling(ctx: tools.Context, prompt: str) -> str:
    """Asks the client's model."""
    reply = await ctx.sample([{"role": "user", "content": {"type": "text", "text": prompt}}], max_tokens=100)
    content = reply.get("content") or {}
    text = content.get("text") if isinstance(content, dict) else str(content)
    return f"LLM response: {text}"


@tools.tool
async def test_elicitation(ctx: tools.Context, message: str) -> str:
    """Asks the user for a username and email."""
    answer = await ctx.elicit(
        message,
        {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        },
    )
    return f"User response: action={answer.get('action')}, content={answer.get('content')}"


@tools.tool
async def test_elicitation_sep1034_defaults(ctx: tools.Context) -> str:
    """Elicitation whose schema carries defaults (SEP-1034)."""
    answer = await ctx.elicit(
        "Please review and update the form fields with defaults",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={answer.get('action')}, content={answer.get('content')}"


@tools.tool
async def test_elicitation_sep1330_enums(ctx: tools.Context) -> str:
    """Elicitation with the five enum shapes of SEP-1330."""
    answer = await ctx.elicit(
        "Please select options from the enum fields",
        {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={answer.get('action')}, content={answer.get('content')}"


@tools.tool
async def test_reconnection(ctx: tools.Context) -> str:
    """Closes its POST stream mid-call (SSE polling); the result arrives after the client
    resumes with GET + Last-Event-ID."""
    await ctx.close_sse_stream()
    await asyncio.sleep(0.5)
    return "Reconnection test completed successfully"


JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "address",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contact": {
            "anyOf": [
                {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
                {"type": "object", "properties": {"phone": {"type": "string"}}, "required": ["phone"]},
            ]
        },
        "kind": {"type": "string", "enum": ["person", "company"]},
    },
    "allOf": [{"required": ["name"]}],
    "if": {"properties": {"kind": {"const": "company"}}, "required": ["kind"]},
    "then": {"required": ["address"]},
    "else": {},
    "additionalProperties": False,
}


@tools.tool(name="json_schema_2020_12_tool", input_schema=JSON_SCHEMA_2020_12)
def json_schema_2020_12_tool(
    name: str = "",
    address: dict[str, Any] | None = None,
    contact: dict[str, Any] | None = None,
    kind: str | None = None,
) -> str:
    """Has an input schema that uses JSON Schema 2020-12 keywords ($defs, $ref, anyOf, if/then/else)."""
    return f"name={name}"


@tools.resource("test://static-text", name="static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource."""
    return "This is the content of the static text resource."


@tools.resource("test://static-binary", name="static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (a PNG)."""
    return PNG_1PX


@tools.resource_template("test://template/{id}/data", name="template-data", mime_type="application/json")
def template_data(id: str) -> str:
    """Data for an id."""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@tools.resource("test://watched-resource", name="watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients can subscribe to."""
    return "Watched resource content"


@tools.tool
async def test_trigger_resource_update() -> str:
    """Sends notifications/resources/updated for test://watched-resource to subscribers."""
    await anotify_resource_updated("test://watched-resource")
    return "resource update sent"


@tools.prompt
def test_simple_prompt() -> str:
    """A simple prompt without arguments."""
    return "This is a simple prompt for testing."


@tools.prompt(completions={"arg1": ["alpha", "beta", "gamma"], "arg2": ["one", "two"]})
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt with two required arguments.

    Args:
        arg1: First test argument
        arg2: Second test argument
    """
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@tools.prompt
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Any]:
    """A prompt that embeds a resource.

    Args:
        resourceUri: URI of the resource to embed
    """
    return [
        tools.EmbeddedResource(resourceUri, text="Embedded resource content for testing.", mime_type="text/plain"),
        "Please process the embedded resource above.",
    ]


@tools.prompt
def test_prompt_with_image() -> list[Any]:
    """A prompt with an image."""
    return [tools.Image(PNG_1PX, "image/png"), "Please analyze the image above."]
