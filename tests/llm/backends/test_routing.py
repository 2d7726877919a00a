"""ModelPerRole: each role's calls go to its own model, recorded in one transcript."""

from __future__ import annotations

import asyncio

from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import CallContext, ChatMessage, ToolOptions
from mgpt.llm.backends.routing import ModelPerRole
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.llm.backends.tool_protocol import call_model


def test_calls_go_to_the_model_of_the_role_asking():
    agent = TestModel([[ToolCall.of("lookup", {"id": "1"})]], name="agent-model")
    customer = FunctionModel(lambda messages, context: "I am the customer", name="customer-model")
    model = ModelPerRole(agent, {"Customer": customer})
    ask = [ChatMessage(role="user", content="hi")]
    tools = ToolOptions(tools=[{"name": "lookup", "description": "", "parameters": {"type": "object"}}])
    answer = asyncio.run(call_model(model, ask, context=CallContext(role="Customer"), tools=None))
    called = asyncio.run(call_model(model, ask, context=CallContext(role="SupportAgent"), tools=tools))
    assert answer.text == "I am the customer" and called.tool_calls[0].name == "lookup"
    assert agent.tools[0] is not None  # the default model got the tools natively
    assert model.name == "agent-model" and model.label == "agent-model (Customer=customer-model)"
    assert model.max_tokens is None  # a FunctionModel sets no cap
