"""Routing, the role loop, react mode, rounds and their bounds, budget, memory."""

import asyncio
import json

import pytest

from mgpt.actions import Action, ActionContext
from mgpt.agents import Budget, BudgetExceeded, Environment, Message, Team, UserRequirement, read_log
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.memory import InMemory, JsonlMemory
from mgpt.roles import ReactMode, Role


class Echo(Action):
    async def run(self, ctx: ActionContext) -> str:
        return "echo: " + ctx.news[-1].content


class Shout(Action):
    async def run(self, ctx: ActionContext) -> str:
        return ctx.news[-1].content.upper()


class Ask(Action):
    description = "ask the model"

    async def run(self, ctx: ActionContext) -> str:
        return await self.ask(f"say something about {ctx.news[0].content}")


class Listener(Role):
    name = "Listener"
    actions = [Echo]
    watch = [UserRequirement]


class Loud(Role):
    name = "Loud"
    actions = [Shout]
    watch = [Echo]


class Recorder:
    """A bus member that only records what reaches it."""

    def __init__(self, name, watch=()):
        self.name = name
        self._watch = set(watch)
        self.got = []

    def watches(self, m):
        return m.cause_by in self._watch

    def deliver(self, m):
        self.got.append(m)


def test_publish_routes_by_watch_and_send_to_not_to_sender(tmp_path):
    env = Environment(tmp_path / "run.jsonl")
    a, b, c = Recorder("a", [UserRequirement]), Recorder("b"), Recorder("c", [Echo])
    for r in (a, b, c):
        env.add(r)
    assert env.publish(Message(content="idea", sent_from="user")) == ["a"]
    assert env.publish(Message(content="hi", sent_from="a", send_to={"b"}, cause_by=UserRequirement)) == ["b"]
    assert env.publish(Message(content="e", sent_from="c", cause_by=Echo)) == []
    assert [m.content for m in a.got] == ["idea"]
    assert [m.content for m in b.got] == ["hi"]
    env.close()
    events = list(read_log(tmp_path / "run.jsonl"))
    assert [e.kind for e in events] == ["message"] * 3
    assert Message.model_validate(events[1].data["message"]).send_to == frozenset({"b"})


def test_duplicate_role_names_are_refused():
    env = Environment()
    env.add(Recorder("a"))
    with pytest.raises(ValueError, match="already"):
        env.add(Recorder("a"))


def test_by_order_chain_runs_until_idle(tmp_path):
    team = Team(env=Environment(tmp_path / "log.jsonl")).hire(Listener(), Loud())
    result = asyncio.run(team.run("hello", max_rounds=5))
    assert result.stop_reason == "idle"
    assert result.rounds == 2
    assert [m.content for m in result.messages] == ["hello", "echo: hello", "ECHO: HELLO"]
    assert [m.cause_by for m in result.messages] == [UserRequirement, Echo, Shout]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["kind"] == "stop"


def test_round_limit_stops_and_says_so():
    class PingPong(Role):
        actions = [Echo]

    ping = PingPong(name="ping", watch=[UserRequirement, Echo])
    pong = PingPong(name="pong", watch=[Echo])
    result = asyncio.run(Team().hire(ping, pong).run("x", max_rounds=3))
    assert result.stop_reason == "max_rounds"
    assert result.rounds == 3
    assert "round limit of 3" in result.detail


def test_roles_with_work_run_concurrently():
    trace = []

    class Slow(Action):
        async def run(self, ctx):
            trace.append(("start", ctx.role_name))
            await asyncio.sleep(0.05)  # yields to the event loop: the other role's turn starts
            trace.append(("end", ctx.role_name))
            return "done"

    a = Role(name="a", actions=[Slow], watch=[UserRequirement])
    b = Role(name="b", actions=[Slow], watch=[UserRequirement])
    result = asyncio.run(Team().hire(a, b).run("go"))
    assert result.rounds == 1
    # Both turns started before either ended: they overlapped in one round.
    assert [kind for kind, _ in trace] == ["start", "start", "end", "end"]


def test_round_snapshot_is_deterministic():
    # B is busy in round 1 with an old message; A's output in round 1 waits for round 2.
    seen = []

    class Note(Action):
        async def run(self, ctx):
            seen.append((ctx.role_name, [m.content for m in ctx.news]))
            return None

    a = Role(name="a", actions=[Echo], watch=[UserRequirement])
    b = Role(name="b", actions=[Note], watch=[UserRequirement, Echo])
    asyncio.run(Team().hire(a, b).run("x"))
    assert seen == [("b", ["x"]), ("b", ["echo: x"])]


def test_react_mode_model_picks_actions_and_stops():
    model = TestModel({("R", "choose_action"): ["2", "Action 1 please", "0"], ("R", "Ask"): ["model says hi"]})
    role = Role(name="R", actions=[Echo, Ask], watch=[UserRequirement], react_mode=ReactMode.REACT)
    result = asyncio.run(Team(model=model).hire(role).run("topic"))
    assert [m.content for m in result.messages[1:]] == ["model says hi", "echo: model says hi"]
    menu = model.requests[0][1][-1].content
    assert "1. Echo" in menu and "2. Ask: ask the model" in menu


def test_react_mode_is_bounded():
    model = FunctionModel(lambda msgs, ctx: "1")  # always picks Echo, never stops
    role = Role(name="R", actions=[Echo], watch=[UserRequirement], react_mode="react", max_react_loop=3)
    events = []
    team = Team(model=model).hire(role)
    team.env.listen(events.append)
    result = asyncio.run(team.run("x"))
    assert len(result.messages) == 1 + 3
    assert [e.detail for e in events if e.kind == "bound"] == ["max_react_loop=3 reached; turn ended"]


def test_budget_is_checked_before_each_call():
    calls = []

    def answer(msgs, ctx):
        calls.append(ctx)
        return "word " * 50

    role = Role(name="R", actions=[Ask, Ask, Ask], watch=[UserRequirement])
    team = Team(model=FunctionModel(answer), budget=Budget(max_tokens=50)).hire(role)
    result = asyncio.run(team.run("x"))
    assert result.stop_reason == "budget"
    assert "token budget of 50" in result.detail
    assert len(calls) == 1  # the second call was refused before it reached the model
    assert result.spend.total_tokens >= 50


def test_budget_in_dollars_with_priced_model():
    from mgpt.llm import LLM, PriceTable

    budget = Budget(max_cost=0.0)
    llm = LLM(FunctionModel(lambda m, c: "x", name="openai:gpt-4o-mini"), role="R", budget=budget)
    with pytest.raises(BudgetExceeded, match=r"budget of \$0.0000"):
        asyncio.run(llm.ask("hi"))
    priced = Budget()
    llm = LLM(FunctionModel(lambda m, c: "a b c", name="openai:gpt-4o-mini"), role="R", budget=priced,
              prices=PriceTable())
    asyncio.run(llm.ask("one two"))
    assert priced.by_role["R"].cost == pytest.approx((2 * 0.15 + 3 * 0.60) / 1e6)


def test_unknown_price_counts_tokens_and_says_cost_unknown():
    budget = Budget()
    from mgpt.llm import LLM

    llm = LLM(FunctionModel(lambda m, c: "a b", name="openai:my-own-model"), role="R", budget=budget)
    asyncio.run(llm.ask("x y z"))
    assert budget.total.total_tokens == 5
    assert budget.total.cost_known is False


def test_turns_count_per_action():
    model = TestModel(["a", "b", "c"])
    from mgpt.llm import LLM

    llm = LLM(model, role="R")
    asyncio.run(llm.ask("1", action="A"))
    asyncio.run(llm.ask("2", action="B"))
    asyncio.run(llm.ask("3", action="A"))
    assert [(c.action, c.turn) for c, _ in model.requests] == [("A", 1), ("B", 1), ("A", 2)]


def test_role_memory_holds_observed_and_produced():
    role = Listener()
    asyncio.run(Team().hire(role).run("hello"))
    remembered = asyncio.run(role.memory.get())
    assert [m.content for m in remembered] == ["hello", "echo: hello"]
    assert [m.content for m in asyncio.run(role.memory.find(cause_by=Echo))] == ["echo: hello"]


def test_memory_protocol_in_memory_and_jsonl(tmp_path):
    async def exercise(mem):
        m1, m2 = Message(content="1", sent_from="a"), Message(content="2", sent_from="b", cause_by=Echo)
        await mem.add(m1)
        await mem.add(m1)  # ignored: same id
        await mem.add(m2)
        assert [m.content for m in await mem.get()] == ["1", "2"]
        assert [m.content for m in await mem.get(limit=1)] == ["2"]
        assert [m.content for m in await mem.find(sent_from="a")] == ["1"]

    asyncio.run(exercise(InMemory()))
    asyncio.run(exercise(JsonlMemory(tmp_path / "mem.jsonl")))
    reloaded = JsonlMemory(tmp_path / "mem.jsonl")
    assert [m.content for m in asyncio.run(reloaded.get())] == ["1", "2"]
    assert asyncio.run(reloaded.find(cause_by=Echo))[0].cause_by is Echo
    asyncio.run(reloaded.clear())
    assert not (tmp_path / "mem.jsonl").exists()


def test_action_without_a_model_says_how_to_fix():
    with pytest.raises(Exception, match="has no model"):
        asyncio.run(Ask().ask("x"))


def test_invalid_bounds_are_refused():
    with pytest.raises(ValueError):
        asyncio.run(Team().run("x", max_rounds=0))
    with pytest.raises(ValueError):
        Budget(max_cost=-1)
    with pytest.raises(ValueError, match="max_react_loop"):
        Role(name="r", max_react_loop=0)
