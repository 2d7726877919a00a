"""``--review tools``: the reviewer is asked before each call to a tool that needs approval."""

from __future__ import annotations

import asyncio

from mgpt.agents.tools import ToolCall, Toolbox, tool
from mgpt.workflows.review import ToolCallReview, approve, coerce, edit, feedback, parse_steps, tool_approver


@tool(needs_approval=True)
def refund(order: str, amount: float) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order}"


def test_the_tools_step_parses_beside_the_document_steps():
    assert parse_steps("prd,tools") == ["prd", "tools"]


def test_the_reviewer_approves_edits_or_declines_each_call():
    shown = []
    decisions = iter([approve(), edit({"tool": "refund", "arguments": {"order": "A1", "amount": 2}}), feedback("ask first")])

    async def reviewer(step, document):
        shown.append((step, document))
        return next(decisions)

    box = Toolbox([refund], approve=tool_approver(reviewer))
    calls = [ToolCall.of("refund", {"order": "A1", "amount": 20}) for _ in range(3)]
    results = asyncio.run(box.run(calls))
    assert [s for s, _ in shown] == ["tools"] * 3
    assert isinstance(shown[0][1], ToolCallReview) and shown[0][1].arguments == {"order": "A1", "amount": 20}
    assert results[0].content == "refunded 20.0 on A1"
    assert results[1].content == "refunded 2.0 on A1"
    assert results[2].is_error and "declined this call: ask first" in results[2].content


def test_an_edited_call_is_read_back_from_json_text():
    review = coerce("tools", '{"tool": "refund", "arguments": {"order": "B2", "amount": 1}}')
    assert review.arguments == {"order": "B2", "amount": 1} and "refund" in review.to_markdown()
