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
from mcp_sse.notify import anotify_list_changed, anotify_resource_updated
from mcp_sse.registry.base import default_registry

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
    # allOf with a nested anyOf: 2026's json-schema-2020-12 checks composition is served as is.
    "allOf": [{"required": ["name"]}, {"anyOf": [{"required": ["name"]}, {"required": ["contact"]}]}],
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


# -- 2026-07-28 (stateless wire) ------------------------------------------------------------
# The input_required fixtures are ordinary tools: in 2025 sessions ctx.elicit()/sample()/
# list_roots() are server-to-client requests; in 2026 they become MRTR inputRequests under the
# given keys, and the tool runs again from the top when the client retries with the answers.

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _sampled_text(reply: dict[str, Any]) -> str:
    content = reply.get("content")
    if isinstance(content, list):
        content = content[0] if content else {}
    return str(content.get("text", "")) if isinstance(content, dict) else ""


@tools.tool
async def test_missing_capability(ctx: tools.Context) -> str:
    """Needs the client's sampling capability; without it the request fails with -32021."""
    reply = await ctx.sample("Say hello.", max_tokens=20, key="greeting")
    return f"sampled: {_sampled_text(reply)}"


@tools.tool
async def test_input_required_result_elicitation(ctx: tools.Context) -> str:
    """Asks the user's name (elicitation), then greets them."""
    answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
    name = (answer.get("content") or {}).get("name", "") if answer.get("action") == "accept" else ""
    return f"Hello, {name or 'stranger'}!"


@tools.tool
async def test_input_required_result_sampling(ctx: tools.Context) -> str:
    """Asks the client's model a question (sampling) and returns its answer."""
    reply = await ctx.sample("What is the capital of France?", max_tokens=100, key="capital_question")
    return f"The model said: {_sampled_text(reply)}"


@tools.tool
async def test_input_required_result_list_roots(ctx: tools.Context) -> str:
    """Asks for the client's roots and lists them."""
    roots = await ctx.list_roots(key="client_roots")
    return "Client roots: " + (", ".join(str(r.get("uri")) for r in roots) or "(none)")


@tools.tool
async def test_input_required_result_request_state(ctx: tools.Context) -> str:
    """Keeps state across the round trip (ctx.request_state) and checks it came back intact."""
    ctx.request_state.setdefault("issued", "confirm-round")
    answer = await ctx.elicit(
        "Please confirm",
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        key="confirm",
    )
    state_ok = ctx.request_state.get("issued") == "confirm-round"
    confirmed = (answer.get("content") or {}).get("ok")
    return f"{'state-ok' if state_ok else 'state-missing'}: confirmed={confirmed}"


@tools.tool
async def test_input_required_result_multiple_inputs(ctx: tools.Context) -> str:
    """Asks three things at once: a name (elicitation), a greeting (sampling) and the roots."""
    answer, reply, roots = await asyncio.gather(
        ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"),
        ctx.sample("Generate a greeting", max_tokens=50, key="greeting"),
        ctx.list_roots(key="client_roots"),
    )
    name = (answer.get("content") or {}).get("name", "")
    return f"{_sampled_text(reply)} {name} (roots: {len(roots)})"


@tools.tool
async def test_input_required_result_multi_round(ctx: tools.Context) -> str:
    """Two questions in two rounds; the second depends on the first."""
    first = await ctx.elicit("Step 1: What is your name?", NAME_SCHEMA, key="step1")
    name = (first.get("content") or {}).get("name", "")
    ctx.request_state["name"] = name
    second = await ctx.elicit(
        f"Step 2: What is your favorite color, {name}?",
        {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]},
        key="step2",
    )
    color = (second.get("content") or {}).get("color", "")
    return f"{ctx.request_state.get('name')} likes {color}"


@tools.tool
async def test_input_required_result_tampered_state(ctx: tools.Context) -> str:
    """Issues a signed requestState; a tampered echo is rejected before this runs again."""
    answer = await ctx.elicit(
        "Please confirm",
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        key="confirm",
    )
    return f"confirmed={(answer.get('content') or {}).get('ok')}"


@tools.tool
async def test_input_required_result_capabilities(ctx: tools.Context) -> str:
    """Asks only what the client declared it can answer (elicitation and/or sampling)."""
    declared = ctx.request_info.client_capabilities or {}
    questions = []
    if "elicitation" in declared:
        questions.append(ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"))
    if "sampling" in declared:
        questions.append(ctx.sample("Say hello", max_tokens=20, key="greeting"))
    if not questions:
        return "The client declared neither elicitation nor sampling"
    answers = await asyncio.gather(*questions)
    return f"Received {len(answers)} answer(s)"


@tools.tool
async def test_streaming_elicitation(ctx: tools.Context) -> str:
    """Reports progress, then asks a question: the stream carries only notifications and the result."""
    await ctx.report_progress(0, 1, "about to ask")
    answer = await ctx.elicit("Continue?", {"type": "object", "properties": {"ok": {"type": "boolean"}}}, key="go_on")
    return f"action={answer.get('action')}"


@tools.tool
async def test_logging_tool(ctx: tools.Context) -> str:
    """Logs at info level; the messages reach only requests that set a log level."""
    for text in ("logging tool started", "logging tool working", "logging tool done"):
        await ctx.info(text)
    return "Logging tool finished"


@tools.tool(
    input_schema={
        "type": "object",
        "properties": {
            "region": {"type": "string", "description": "Region to run in", "x-mcp-header": "Region"},
        },
        "required": ["region"],
        "additionalProperties": False,
    }
)
def test_x_mcp_header(region: str) -> str:
    """Echoes its region argument, which clients mirror in the Mcp-Param-Region header."""
    return f"region={region}"


def _dynamic_tool() -> str:
    """Exists only between two calls of test_trigger_tool_change."""
    return "dynamic tool"


def _dynamic_prompt() -> str:
    """Exists only between two calls of test_trigger_prompt_change."""
    return "This prompt was added at run time."


@tools.tool
async def test_trigger_tool_change() -> str:
    """Adds test_dynamic_tool to the tool list (or removes it) and notifies listeners."""
    if "test_dynamic_tool" in default_registry.tools:
        default_registry.remove_tool("test_dynamic_tool")
        change = "removed"
    else:
        tools.tool(_dynamic_tool, name="test_dynamic_tool")
        change = "added"
    await anotify_list_changed("tools")
    return f"test_dynamic_tool {change}"


@tools.tool
async def test_trigger_prompt_change() -> str:
    """Adds test_dynamic_prompt to the prompt list (or removes it) and notifies listeners."""
    if "test_dynamic_prompt" in default_registry.prompts:
        default_registry.remove_prompt("test_dynamic_prompt")
        change = "removed"
    else:
        tools.prompt(_dynamic_prompt, name="test_dynamic_prompt")
        change = "added"
    await anotify_list_changed("prompts")
    return f"test_dynamic_prompt {change}"


@tools.prompt
async def test_input_required_result_prompt(ctx: tools.Context) -> str:
    """A prompt that first asks the user which context to use."""
    answer = await ctx.elicit(
        "What context should the prompt use?",
        {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]},
        key="user_context",
    )
    context = (answer.get("content") or {}).get("context", "")
    return f"Use this context: {context}"


# -- the tasks extension (SEP-2663): the fixtures its tasks-* scenarios call ---------------


@tools.tool
def greet(name: str) -> str:
    """Greets someone, inline (never a task)."""
    return f"Hello, {name}!"


@tools.tool(task="optional")
async def slow_compute(ctx: tools.Context, seconds: float = 1.0, label: str = "") -> str:
    """Works for `seconds`, as a task when the client takes tasks; stops when cancelled."""
    await asyncio.sleep(max(0.0, min(seconds, 600.0)))
    return f"computed {label or 'result'} in {seconds:g} s"


@tools.tool(task="required")
async def failing_job() -> str:
    """Works a second, then fails as a tool (the task still completes, with isError)."""
    await asyncio.sleep(1.0)
    raise tools.ToolError("the job failed")


@tools.tool(task="optional")
async def protocol_error_job() -> str:
    """Fails with a JSON-RPC error (the task ends "failed")."""
    from mcp_sse.protocol.errors import INVALID_PARAMS, MCPError

    await asyncio.sleep(0.2)
    raise MCPError(INVALID_PARAMS, "protocol_error_job always fails with a protocol error")


@tools.tool(task="optional")
async def confirm_delete(ctx: tools.Context, filename: str) -> str:
    """Asks the user to confirm before it "deletes" a file."""
    answer = await ctx.elicit(
        f"Delete {filename}?",
        {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]},
    )
    confirmed = answer.get("action") == "accept" and (answer.get("content") or {}).get("confirm") is True
    return f"{filename} deleted" if confirmed else f"{filename} kept"


@tools.tool(task="optional")
async def multi_input(ctx: tools.Context) -> str:
    """Asks two questions at once."""
    schema = {"type": "object", "properties": {"confirm": {"type": "boolean"}}}
    first, second = await asyncio.gather(
        ctx.elicit("First question?", schema, key="first"), ctx.elicit("Second question?", schema, key="second")
    )
    return f"answers: {first.get('action')}, {second.get('action')}"


@tools.tool(task="required", task_starts="begin_task")
async def test_tool_with_task(ctx: tools.Context) -> str:
    """Asks for a name in the call's own rounds, then becomes a task that greets it."""
    answer = await ctx.elicit(
        "What is your name?",
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        key="user_name",
    )
    await ctx.begin_task()
    await asyncio.sleep(0.5)
    return f"Hello, {(answer.get('content') or {}).get('name', 'stranger')}!"
