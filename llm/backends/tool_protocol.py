"""Tool calling for models without a native tools API: a prompt, a JSON shape, a parser.

The model is shown the tools in its system message and answers with one JSON object:
``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` to call tools, or
``{"answer": "..."}`` to answer. :func:`tool_schema` is that shape as a JSON schema, the
union of "call one of these tools with arguments valid for it" and "a final answer", so a
backend that decodes under a grammar (local models, ``mgpt serve``) can only write a call
that names a real tool with arguments that validate. Earlier tool calls and results in the
conversation are written as plain turns (:func:`render_messages`).

Used by :func:`call_model` for any backend that does not take
``tools=``, by :class:`~mgpt.llm.backends.openai_model.OpenAIModel` when a server refuses
``tools``, and by ``mgpt serve``.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import (
    CallContext, ChatMessage, Completion, Model, OutputFormat, ToolOptions, accepts_output, accepts_tools,
)
from mgpt.llm.parsing import ParseError, extract_json

__all__ = [
    "MAX_PARALLEL_CALLS", "call_model", "complete_as_text", "describe_parameters", "output_format",
    "parse_reply", "render_messages", "tool_prompt", "tool_schema",
]

#: Calls one turn may ask for under the protocol when parallel calls are allowed.
MAX_PARALLEL_CALLS = 4


def tool_schema(options: ToolOptions) -> dict[str, Any] | None:
    """The JSON schema of a reply under ``options``; None when no tool is offered
    (``choice="none"``: the reply is plain text)."""
    offered = options.offered()
    if not offered:
        return None
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t["name"]}, "arguments": t.get("parameters") or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in offered
    ]
    call_branch = {
        "type": "object",
        "properties": {
            "tool_calls": {
                "type": "array",
                "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                "minItems": 1,
                "maxItems": MAX_PARALLEL_CALLS if options.parallel else 1,
            }
        },
        "required": ["tool_calls"],
        "additionalProperties": False,
    }
    if options.choice != "auto":
        return call_branch
    answer_branch = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    return {"anyOf": [call_branch, answer_branch]}


def output_format(options: ToolOptions) -> OutputFormat | None:
    """:func:`tool_schema` as an :class:`OutputFormat` (None for a plain-text reply)."""
    schema = tool_schema(options)
    return None if schema is None else OutputFormat(kind="json_schema", name="tool_reply", json_schema=schema)


def _type_label(node: dict[str, Any], depth: int = 0) -> str:
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            labels = [_type_label(n, depth) for n in node[key] if n.get("type") != "null"]
            return " | ".join(labels) or "null"
    kind = node.get("type")
    if kind == "array":
        return f"list of {_type_label(node.get('items') or {}, depth)}"
    if kind == "object" and node.get("properties") and depth < 3:
        return "{" + describe_parameters(node, depth + 1) + "}"
    return str(kind or "any")


def describe_parameters(schema: dict[str, Any], depth: int = 0) -> str:
    """A compact argument list: ``city: string, unit?: "C" | "F"`` (``?``: optional)."""
    required = set(schema.get("required") or [])
    parts = []
    for name, node in (schema.get("properties") or {}).items():
        label = _type_label(node, depth)
        note = f" ({node['description']})" if node.get("description") and depth == 0 else ""
        parts.append(f"{name}{'' if name in required else '?'}: {label}{note}")
    return ", ".join(parts)


def tool_prompt(options: ToolOptions) -> str:
    """The system-message text that shows the model its tools and how to call them."""
    offered = options.offered()
    lines = ["You can call these tools:"]
    for t in offered:
        desc = " ".join((t.get("description") or "").split())
        lines.append(f"- {t['name']}({describe_parameters(t.get('parameters') or {})})" + (f": {desc}" if desc else ""))
    calls = "one or more calls" if options.parallel else "one call"
    lines.append(
        f'To call tools, reply with one JSON object: {{"tool_calls": [...]}} holding {calls}, '
        'each {"name": tool name, "arguments": {...}}.'
    )
    if options.choice == "auto":
        lines.append('When you can answer without a tool, or once the results are in, reply {"answer": "..."}.')
    elif options.choice != "required":
        lines.append(f"Call {options.choice}.")
    return "\n".join(lines)


def _call_json(call: ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = call.arguments
    return {"name": call.name, "arguments": arguments}


def render_messages(messages: list[ChatMessage], options: ToolOptions | None) -> list[ChatMessage]:
    """``messages`` as plain system/user/assistant turns: the tool prompt joins the system
    message, an assistant's calls become its JSON reply, and tool results become a user
    turn (consecutive results share one)."""
    out: list[ChatMessage] = []
    prompt = tool_prompt(options) if options is not None and options.offered() else ""
    for message in messages:
        if message.role == "tool":
            text = f"Result of {message.name or 'the tool'} (call {message.tool_call_id}):\n{message.content}"
            if out and out[-1].role == "user" and out[-1].content.startswith("Result of "):
                out[-1] = ChatMessage(role="user", content=out[-1].content + "\n\n" + text)
            else:
                out.append(ChatMessage(role="user", content=text))
        elif message.role == "assistant" and message.tool_calls:
            content = json.dumps({"tool_calls": [_call_json(c) for c in message.tool_calls]}, ensure_ascii=False)
            out.append(ChatMessage(role="assistant", content=content))
        else:
            out.append(ChatMessage(role=message.role, content=message.content))
    if prompt:
        if out and out[0].role == "system":
            out[0] = ChatMessage(role="system", content=f"{out[0].content}\n\n{prompt}")
        else:
            out.insert(0, ChatMessage(role="system", content=prompt))
    return out


def parse_reply(text: str) -> tuple[str, list[ToolCall]]:
    """``(answer text, calls)`` from a reply under the protocol. A reply that is not the
    protocol's JSON is taken as the answer itself (what a model that ignores tools says)."""
    try:
        data = extract_json(text)
    except ParseError:
        return text, []
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        items = data["tool_calls"]
    elif isinstance(data, dict) and isinstance(data.get("name"), str) and "arguments" in data:
        items = [data]  # one bare call, as small models often write it
    elif isinstance(data, dict) and isinstance(data.get("answer"), str):
        return data["answer"], []
    else:
        return text, []
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        arguments = item.get("arguments", {})
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(name=item["name"], arguments=raw))
    return ("", calls) if calls else (text, [])


Complete = Callable[[list[ChatMessage], "OutputFormat | None"], Awaitable[Completion]]


async def complete_as_text(complete: Complete, messages: list[ChatMessage], options: ToolOptions) -> Completion:
    """Ask through ``complete(messages, output)`` (a backend without native tools) and turn
    the reply into a :class:`Completion` with ``tool_calls``."""
    completion = await complete(render_messages(messages, options), output_format(options))
    if not options.offered():
        return completion
    text, calls = parse_reply(completion.text)
    return completion.model_copy(
        update={"text": text, "tool_calls": calls, "finish_reason": "tool_calls" if calls else completion.finish_reason}
    )


async def call_model(
    model: Model,
    messages: list[ChatMessage],
    *,
    context: CallContext,
    output: OutputFormat | None = None,
    tools: ToolOptions | None = None,
) -> Completion:
    """``model.complete`` with what it accepts: ``output`` where it takes one, ``tools``
    natively where it takes them, else through this module's prompt-and-parse protocol."""
    if tools is not None and not accepts_tools(model):

        async def plain(msgs: list[ChatMessage], fmt: OutputFormat | None) -> Completion:
            return await call_model(model, msgs, context=context, output=fmt)

        return await complete_as_text(plain, messages, tools)
    kwargs: dict[str, Any] = {}
    if output is not None and accepts_output(model):
        kwargs["output"] = output
    if tools is not None:
        kwargs["tools"] = tools
    return await model.complete(messages, context=context, **kwargs)
