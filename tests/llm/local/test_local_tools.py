"""Local models call tools under a grammar built from the tools' schemas: even a model with
random weights writes only calls that name a real tool with arguments that validate."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")

from pydantic import BaseModel  # noqa: E402

from mgpt.agents.tools import Toolbox, tool  # noqa: E402
from mgpt.llm.backends.base import CallContext, ChatMessage, ToolOptions  # noqa: E402
from mgpt.llm.backends.tool_protocol import call_model, tool_schema  # noqa: E402
from mgpt.llm.local.model import LocalModel  # noqa: E402
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402


class Item(BaseModel):
    sku: str
    quantity: int


@tool
def place_order(customer: str, items: list[Item], express: bool = False, note: str | None = None) -> str:
    """Order items for a customer."""
    return "ok"


@tool
def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """The weather in a city."""
    return "ok"


@tool
def ping() -> str:
    """No arguments."""
    return "pong"


TOOLS = [place_order, get_weather, ping]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True, n_positions=2048)


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["auto", "required", "get_weather"])
def test_every_call_names_a_real_tool_with_valid_arguments(checkpoint, choice):
    options = ToolOptions(tools=[t.spec() for t in TOOLS], choice=choice, parallel=True)
    box = Toolbox(TOOLS)
    calls = answers = 0
    for seed in range(4):
        model = LocalModel(checkpoint, max_new_tokens=300, temperature=1.0, seed=seed, decoder="hf")
        completion = asyncio.run(call_model(
            model, [ChatMessage(role="user", content="order two pens for Ann")],
            context=CallContext(), tools=options))
        if not completion.tool_calls:
            assert choice == "auto"  # only "auto" may answer instead
            answers += 1
            continue
        for call in completion.tool_calls:
            calls += 1
            found = {t.name: t for t in TOOLS}[call.name]
            found.validate(json.loads(call.arguments))  # raises if the arguments do not validate
            if choice == "get_weather":
                assert call.name == "get_weather"
        results = asyncio.run(box.run(completion.tool_calls))
        assert not any(r.is_error for r in results), results
    assert calls + answers >= 4 and (choice == "auto" or calls >= 4)


def test_the_union_schema_holds_each_tool_and_the_answer():
    options = ToolOptions(tools=[t.spec() for t in TOOLS], parallel=False)
    schema = tool_schema(options)
    calls, answer = schema["anyOf"]
    assert answer["required"] == ["answer"]
    items = calls["properties"]["tool_calls"]
    assert items["maxItems"] == 1
    assert [b["properties"]["name"]["const"] for b in items["items"]["anyOf"]] == ["place_order", "get_weather", "ping"]
    assert tool_schema(ToolOptions(tools=options.tools, choice="none")) is None
