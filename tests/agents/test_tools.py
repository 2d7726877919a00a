"""Tools in the kernel: schemas from functions, the runner's failures as results, the loop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from mgpt.actions.base import UseTools
from mgpt.agents.environment import Environment
from mgpt.agents.errors import MgptError
from mgpt.agents.message import UserRequirement
from mgpt.agents.runlog import read_log
from mgpt.agents.team import Team
from mgpt.agents.tools import ToolCall, Toolbox, ToolError, ToolExchange, ToolUse, tool
from mgpt.llm.backends.testing import TestModel
from mgpt.roles.base import Role


class Address(BaseModel):
    street: str
    zip: str | None = None


@tool
def get_weather(city: Annotated[str, Field(description="a city name")], unit: Literal["C", "F"] = "C") -> str:
    """The weather in a city now."""
    return f"sunny, 21 {unit} in {city}"


@tool(timeout=0.2)
async def slow() -> str:
    """Never finishes in time."""
    await asyncio.sleep(10)
    return "late"


@tool
def broken(x: int) -> str:
    """Raises."""
    raise ValueError(f"cannot handle {x}")


def run(coro):
    return asyncio.run(coro)


def test_a_function_gives_name_description_and_schema():
    @tool
    def ship(to: Address, items: list[str], express: bool = False) -> str:
        """Ship items to an address."""
        return "ok"

    assert ship.name == "ship" and ship.description == "Ship items to an address."
    params = ship.parameters
    assert params["required"] == ["to", "items"]
    assert params["properties"]["to"]["properties"]["street"]["type"] == "string"  # nested model inlined
    assert "$defs" not in params and params["additionalProperties"] is False
    assert get_weather.parameters["properties"]["unit"]["enum"] == ["C", "F"]
    assert get_weather.parameters["properties"]["city"]["description"] == "a city name"


def test_a_parameter_without_a_type_hint_is_refused():
    def f(x):
        return x

    with pytest.raises(MgptError, match="no type hint"):
        tool(f)


def test_each_failure_becomes_an_error_result_and_the_rest_run():
    box = Toolbox([get_weather, slow, broken])
    calls = [
        ToolCall.of("get_weather", {"city": "Paris"}),
        ToolCall.of("slow"),
        ToolCall.of("broken", {"x": 3}),
        ToolCall.of("get_weather", {"city": "Oslo", "unit": "K"}),
        ToolCall(name="get_weather", arguments="{not json"),
        ToolCall.of("launch_rockets"),
        ToolCall.of("get_weather", {"city": "Rome", "extra": 1}),
    ]
    results = run(box.run(calls))
    assert [r.call_id for r in results] == [c.id for c in calls]
    ok, late, raised, bad_enum, not_json, unknown, extra = results
    assert not ok.is_error and ok.content == "sunny, 21 C in Paris"
    assert late.is_error and "did not finish within its 0.2s deadline" in late.content
    assert raised.is_error and "raised ValueError: cannot handle 3" in raised.content
    assert bad_enum.is_error and "unit" in bad_enum.content and "'C' or 'F'" in bad_enum.content
    assert not_json.is_error and "not valid JSON" in not_json.content
    assert unknown.is_error and "no tool named 'launch_rockets'" in unknown.content and "get_weather" in unknown.content
    assert extra.is_error and "extra" in extra.content


def test_a_tool_error_is_shown_as_its_message():
    @tool
    def lookup(order: str) -> str:
        """Find an order."""
        raise ToolError(f"no order {order}")

    (result,) = run(Toolbox([lookup]).run([ToolCall.of("lookup", {"order": "A1"})]))
    assert result.is_error and result.content == "Error: no order A1"


def test_calls_in_one_turn_run_concurrently():
    @tool
    async def wait(seconds: float) -> str:
        """Wait."""
        await asyncio.sleep(seconds)
        return "done"

    @tool
    def block(seconds: float) -> str:
        """Wait in a thread."""
        time.sleep(seconds)
        return "done"

    calls = [ToolCall.of("wait", {"seconds": 0.4}) for _ in range(3)] + [ToolCall.of("block", {"seconds": 0.4})]
    started = time.perf_counter()
    results = run(Toolbox([wait, block]).run(calls))
    assert time.perf_counter() - started < 1.0  # 4 x 0.4 s one after the other would be 1.6 s
    assert all(r.content == "done" for r in results)


def test_results_are_redacted(monkeypatch):
    monkeypatch.setenv("SHOP_API_TOKEN", "tok-1234567890-secret")

    @tool
    def leak() -> str:
        """Leaks the token."""
        import os

        return f"token is {os.environ['SHOP_API_TOKEN']}"

    (result,) = run(Toolbox([leak]).run([ToolCall.of("leak")]))
    assert "tok-1234567890-secret" not in result.content and "[redacted]" in result.content


def test_approval_runs_declines_or_edits():
    ran = []

    @tool(needs_approval=True)
    def refund(order: str, amount: float) -> str:
        """Refund an order."""
        ran.append((order, amount))
        return "refunded"

    answers = iter([True, "too much", {"order": "A1", "amount": 5.0}])
    asked = []

    def approve(call, found):
        asked.append((call.name, found.name))
        return next(answers)

    box = Toolbox([refund, get_weather], approve=approve)
    calls = [ToolCall.of("refund", {"order": "A1", "amount": 50}) for _ in range(3)]
    calls.append(ToolCall.of("get_weather", {"city": "Paris"}))  # needs no approval
    results = run(box.run(calls))
    assert len(asked) == 3
    assert [r.is_error for r in results] == [False, True, False, False]
    assert "declined this call: too much" in results[1].content
    assert sorted(ran) == [("A1", 5.0), ("A1", 50.0)]


class Clerk(Role):
    name = "Clerk"
    profile = "a shop clerk"
    actions = [UseTools]
    watch = [UserRequirement]
    tools = [get_weather, broken]


def test_a_role_runs_the_loop_and_puts_calls_on_the_bus_and_in_the_log(tmp_path):
    model = TestModel([
        [ToolCall.of("get_weather", {"city": "Paris"}), ToolCall.of("broken", {"x": 1})],
        "It is sunny in Paris.",
    ])
    team = Team(model=model, env=Environment(tmp_path / "run.jsonl")).hire(Clerk())
    result = run(team.run("What is the weather in Paris?"))
    team.env.close()
    assert result.stop_reason == "idle"
    exchange = next(m for m in result.messages if m.cause_by is ToolUse)
    assert isinstance(exchange.payload, ToolExchange) and exchange.sent_from == "Clerk"
    assert [r.is_error for r in exchange.payload.results] == [False, True]
    assert result.messages[-1].content == "It is sunny in Paris."
    # the second request carries the calls and both results, the error included
    second = model.requests[1][1]
    assert second[-3].tool_calls and [m.role for m in second[-2:]] == ["tool", "tool"]
    assert "raised ValueError" in second[-1].content
    assert model.tools[0] is not None and model.tools[0].names() == ["get_weather", "broken"]
    kinds = [e.kind for e in read_log(tmp_path / "run.jsonl")]
    assert kinds.count("tool_call") == 2 and kinds.count("tool_result") == 2
    assert kinds.index("tool_call") < kinds.index("tool_result")


def test_the_loop_stops_at_its_step_limit_and_says_so():
    class Limited(UseTools):
        max_tool_steps = 2

    class Looper(Clerk):
        actions = [Limited]

    model = TestModel([[ToolCall.of("get_weather", {"city": "X"})]] * 2 + ["giving up: no answer"])
    events = []
    team = Team(model=model).hire(Looper())
    team.env.listen(events.append)
    result = run(team.run("loop"))
    assert result.messages[-1].content == "giving up: no answer"
    bound = [e for e in events if e.kind == "bound"]
    assert bound and "max_tool_steps=2" in bound[0].detail
    assert model.tools[-1].choice == "none"  # the last call offers no tools


def test_a_role_without_tools_offers_none():
    model = TestModel(["plain answer"])
    role = Role(name="Plain", actions=[UseTools], watch=[UserRequirement])
    run(Team(model=model).hire(role).run("hi"))
    assert model.tools == [None]


def test_two_tools_with_one_name_are_refused():
    with pytest.raises(MgptError, match="two tools are named"):
        Toolbox([get_weather, tool(get_weather.fn)])


def test_tool_call_arguments_round_trip():
    call = ToolCall.of("get_weather", {"city": "Paris"}, id="call_1")
    assert json.loads(call.arguments) == {"city": "Paris"} and call.brief() == 'get_weather({"city": "Paris"})'
