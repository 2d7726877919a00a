"""``mgpt serve`` takes tools and returns tool_calls in OpenAI's shape, streamed and not,
decoded under the tools' grammar: a model with random weights still calls real tools with
arguments that validate. Driven by the official ``openai`` SDK over real HTTP."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="mgpt serve needs the [train] extra")
pytest.importorskip("starlette", reason="mgpt serve needs the [serve] extra")
pytest.importorskip("xgrammar", reason="constrained decoding needs xgrammar")
jsonschema = pytest.importorskip("jsonschema")
import openai  # noqa: E402
from test_serve import Server, make_tiny_llama  # noqa: E402

from mgpt.llm.serve.app import ServeLimits, create_app, load_served_model  # noqa: E402

NAME = "tiny-tools"
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 12}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "place_order", "description": "Order items.",
        "parameters": {"type": "object", "properties": {
            "items": {"type": "array", "maxItems": 2, "items": {"type": "object", "properties": {
                "sku": {"type": "string", "maxLength": 6}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"]}},
            "express": {"type": "boolean"}},
            "required": ["items"]}}},
    {"type": "function", "function": {"name": "ping", "description": "No arguments."}},
]
SCHEMAS = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in TOOLS}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    checkpoint = make_tiny_llama(tmp_path_factory.mktemp("tiny-tools"), context=2048)
    served = load_served_model(checkpoint, name=NAME, device="cpu", threads=1)
    limits = ServeLimits(max_tokens=400, default_max_tokens=200)
    with Server(create_app(served, limits=limits)) as server:
        with openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120) as c:
            yield c


def ask(client, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "order two pens"}])
    return client.chat.completions.create(model=NAME, max_tokens=200, tools=TOOLS, **kw)


def check(calls, offered=SCHEMAS):
    assert calls
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.function.arguments), offered[call.function.name])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tool_calls_come_back_valid_in_openai_shape(client, seed):
    response = ask(client, tool_choice="required", temperature=1.0, seed=seed)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    check(choice.message.tool_calls)


@pytest.mark.slow
def test_a_named_tool_and_one_call_at_most(client):
    for seed in range(3):
        response = ask(client, tool_choice={"type": "function", "function": {"name": "place_order"}},
                       parallel_tool_calls=False, temperature=1.0, seed=seed)
        calls = response.choices[0].message.tool_calls
        assert len(calls) == 1 and calls[0].function.name == "place_order"
        check(calls)


@pytest.mark.slow
def test_streamed_tool_calls(client):
    stream = ask(client, tool_choice="required", stream=True, temperature=1.0, seed=4)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.id or ""
            slot["name"] += (delta.function.name or "") if delta.function else ""
            slot["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert finish == "tool_calls" and calls
    for call in calls.values():
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS[call["name"]])


@pytest.mark.slow
def test_a_conversation_with_tool_results_is_accepted(client):
    messages = [
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    response = ask(client, messages=messages, tool_choice="none")
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason in ("stop", "length")


def test_malformed_tool_fields_are_400s(client):
    for bad, param in [
        ({"tools": "get_weather"}, "tools"),
        ({"tool_choice": {"type": "function", "function": {"name": "launch"}}}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ]:
        kw = {"tools": TOOLS, **bad}
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=NAME, max_tokens=8, messages=[{"role": "user", "content": "x"}], **kw)
        assert info.value.body["param"] == param
