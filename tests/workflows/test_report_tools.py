"""Tool calls show in the HTML report's timeline, failed ones marked."""

from __future__ import annotations

import asyncio

from mgpt.actions.base import UseTools
from mgpt.agents.environment import Environment
from mgpt.agents.message import UserRequirement
from mgpt.agents.team import Team
from mgpt.agents.tools import ToolCall, tool
from mgpt.llm.backends.testing import TestModel
from mgpt.roles.base import Role
from mgpt.workflows.report import load_run, write_report


@tool
def lookup(order: str) -> str:
    """Find an order."""
    if order == "bad":
        raise KeyError(order)
    return f"order {order}: shipped"


def test_the_timeline_lists_each_tool_call(tmp_path):
    model = TestModel([[ToolCall.of("lookup", {"order": "A1"}), ToolCall.of("lookup", {"order": "bad"})], "A1 shipped."])
    env = Environment(tmp_path / ".mgpt" / "run.jsonl")
    role = Role(name="Clerk", actions=[UseTools], watch=[UserRequirement], tools=[lookup])
    asyncio.run(Team(model=model, env=env).hire(role).run("where is A1?"))
    env.close()
    run = load_run(tmp_path)
    (span,) = [s for s in run.spans if s.action == "UseTools"]
    assert [failed for _, failed in span.tools.values()] == [False, True]
    assert not [e for e in run.notices if e.kind.startswith("tool_")]
    html = write_report(tmp_path).read_text()
    assert 'lookup({&quot;order&quot;: &quot;A1&quot;})' in html and "(error)" in html
    assert "ToolUse" in html  # the exchange is a message on the bus, listed with the others
