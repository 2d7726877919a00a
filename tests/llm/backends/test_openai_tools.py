"""Tools on OpenAI-compatible servers: the native fields, and the prompt-and-parse fallback
for a server that refuses them (remembered), through the real openai SDK over HTTP."""

from __future__ import annotations

import asyncio
from typing import Literal

from openai_stub import OpenAIStub

from mgpt.actions.base import UseTools
from mgpt.agents.message import UserRequirement
from mgpt.agents.team import Team
from mgpt.agents.tools import tool
from mgpt.llm.backends.base import CallContext, ChatMessage, ToolOptions
from mgpt.llm.backends.openai_model import OpenAIModel
from mgpt.roles.base import Role


@tool
def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """The weather in a city now."""
    return f"sunny, 21 {unit} in {city}"


def clerk() -> Role:
    return Role(name="Clerk", actions=[UseTools], watch=[UserRequirement], tools=[get_weather])


def model(stub: OpenAIStub) -> OpenAIModel:
    return OpenAIModel("stub-model", base_url=stub.base_url, api_key="sk-test-0123456789", timeout=5.0, max_attempts=1)


def test_native_tool_calls_round_trip():
    plans = [("tool_calls", [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo", "unit": "F"})]),
             ("ok", "Sunny in both.")]
    with OpenAIStub(plans) as stub:
        result = asyncio.run(Team(model=model(stub)).hire(clerk()).run("weather in Paris and Oslo?"))
        first, second = (r.json for r in stub.chat_requests)
    assert result.messages[-1].content == "Sunny in both."
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["tools"][0]["function"]["parameters"]["properties"]["unit"]["enum"] == ["C", "F"]
    assert first["tool_choice"] == "auto" and first["parallel_tool_calls"] is True
    assistant, *results = second["messages"][-3:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert [(r["role"], r["tool_call_id"], r["content"]) for r in results] == [
        ("tool", "call_1", "sunny, 21 C in Paris"), ("tool", "call_2", "sunny, 21 F in Oslo")]


def test_tool_choice_and_parallel_go_on_the_wire():
    options = ToolOptions(tools=[get_weather.spec()], choice="get_weather", parallel=False)
    with OpenAIStub([("tool_calls", [("get_weather", '{"city": "Rome"}')])]) as stub:
        completion = asyncio.run(model(stub).complete(
            [ChatMessage(role="user", content="Rome?")], context=CallContext(), tools=options))
        sent = stub.chat_requests[0].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert completion.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [("call_1", "get_weather", '{"city": "Rome"}')]


def test_a_server_that_refuses_tools_gets_them_through_the_prompt_and_is_remembered():
    plans = [
        ("status", 400, {}, "tools are not supported by this server"),
        ("ok", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'),
        ("ok", '{"answer": "It is sunny in Paris."}'),
    ]
    with OpenAIStub(plans) as stub:
        result = asyncio.run(Team(model=model(stub)).hire(clerk()).run("weather in Paris?"))
        refused, *fallback = (r.json for r in stub.chat_requests)
        # a new model for the same server does not try native tools again
        stub.push(("ok", '{"answer": "still sunny"}'))
        again = asyncio.run(model(stub).complete(
            [ChatMessage(role="user", content="and now?")], context=CallContext(),
            tools=ToolOptions(tools=[get_weather.spec()])))
        last = stub.chat_requests[-1].json
    assert "tools" in refused
    assert all("tools" not in r for r in [*fallback, last])
    assert "get_weather(city: string, unit?: \"C\" | \"F\")" in fallback[0]["messages"][0]["content"]
    assert fallback[0]["response_format"]["type"] == "json_schema"  # the union of calls and answer
    assert "Result of get_weather" in fallback[1]["messages"][-1]["content"]
    assert result.messages[-1].content == "It is sunny in Paris."
    assert again.text == "still sunny" and again.tool_calls == []
