"""Tool calling in ``mgpt serve``: OpenAI's ``tools`` / ``tool_choice`` /
``parallel_tool_calls`` in, ``tool_calls`` out, decoded under a grammar.

The served model is shown the tools in its system message and writes the reply of the
prompt-and-parse protocol (:mod:`mgpt.llm.backends.tool_protocol`), constrained to the
union of "call one of the offered tools with arguments valid for it" and "answer" (only
calls under ``tool_choice="required"`` or a named tool). The server turns that reply back
into OpenAI's shape: ``message.tool_calls`` with ``finish_reason="tool_calls"``, or
``message.content``. A streamed request gets the same as chunks once the reply is complete
(the calls cannot be told from an answer before the grammar has closed them). Earlier
``tool`` turns and assistant ``tool_calls`` in the conversation are accepted.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import ChatMessage, ToolOptions
from mgpt.llm.backends.tool_protocol import parse_reply, render_messages, tool_schema

__all__ = ["ToolRequestError", "openai_reply", "parse_tool_options", "render_chat", "response_format", "stream_deltas"]


class ToolRequestError(ValueError):
    """A request's tool fields are malformed; ``param`` names the field (a 400)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def parse_tool_options(body: dict[str, Any]) -> ToolOptions | None:
    """The request's tools as :class:`ToolOptions`, or None when it offers none."""
    if body.get("functions"):
        raise ToolRequestError("the legacy functions field is not supported: send tools", "functions")
    raw = body.get("tools")
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise ToolRequestError("tools must be a list", "tools")
    specs = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) and item.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ToolRequestError('each tool must be {"type": "function", "function": {"name": ...}}', f"tools.{i}")
        parameters = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise ToolRequestError("a tool's parameters must be a JSON schema object", f"tools.{i}.function.parameters")
        specs.append({"name": fn["name"], "description": str(fn.get("description") or ""), "parameters": parameters})
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ToolRequestError("two tools have the same name", "tools")
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if name not in names:
            raise ToolRequestError(f"tool_choice names no offered tool ({name!r})", "tool_choice")
        choice = name
    elif choice not in ("auto", "none", "required"):
        raise ToolRequestError("tool_choice must be auto, none, required or a function", "tool_choice")
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise ToolRequestError("parallel_tool_calls must be true or false", "parallel_tool_calls")
    return ToolOptions(tools=specs, choice=choice, parallel=parallel)


def chat_message(raw: dict[str, Any], content: str, index: int) -> ChatMessage:
    """One request message as a :class:`ChatMessage`, tool turns included."""
    role = raw.get("role")
    if role == "tool":
        return ChatMessage(role="tool", content=content, tool_call_id=str(raw.get("tool_call_id") or ""),
                           name=raw.get("name") if isinstance(raw.get("name"), str) else None)
    calls = []
    for j, call in enumerate(raw.get("tool_calls") or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ToolRequestError("a tool call needs function.name", f"messages.{index}.tool_calls.{j}")
        arguments = fn.get("arguments", "{}")
        calls.append(ToolCall(id=str(call.get("id") or f"call_{j}"), name=fn["name"],
                              arguments=arguments if isinstance(arguments, str) else json.dumps(arguments)))
    return ChatMessage(role=role, content=content, tool_calls=calls or None)


def render_chat(messages: list[ChatMessage], options: ToolOptions | None) -> list[dict[str, str]]:
    """The messages the model reads: tool turns as text, the tools in the system message."""
    return [{"role": m.role, "content": m.content} for m in render_messages(messages, options)]


def response_format(options: ToolOptions) -> dict[str, Any] | None:
    """The ``response_format`` that constrains the reply (None: plain text, no tool offered)."""
    schema = tool_schema(options)
    return None if schema is None else {"type": "json_schema", "json_schema": {"name": "tool_reply", "schema": schema}}


def openai_reply(text: str, options: ToolOptions) -> tuple[dict[str, Any], bool]:
    """``(message, called)``: the model's protocol reply as an OpenAI assistant message."""
    if not options.offered():
        return {"role": "assistant", "content": text}, False
    answer, calls = parse_reply(text)
    if not calls:
        return {"role": "assistant", "content": answer}, False
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }, True


def stream_deltas(text: str, options: ToolOptions) -> tuple[list[dict[str, Any]], bool]:
    """The chunks' deltas for a streamed reply (sent once it is complete), and whether it
    called tools."""
    message, called = openai_reply(text, options)
    if not called:
        return ([{"content": message["content"]}] if message["content"] else []), False
    return [{"tool_calls": [{"index": i, **call}]} for i, call in enumerate(message["tool_calls"])], True
