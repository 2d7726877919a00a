"""The labelled tool-call set and its scoring (what benchmarks/bench_tools.py measures with; no model needed)."""

from __future__ import annotations

import json
from collections import Counter

from mgpt.agents.tools import ToolCall
from mgpt.llm.eval import tool_calls as bench_tools


def test_the_labelled_set_spreads_over_every_tool_and_offers_the_right_one():
    requests = bench_tools.labelled_requests(200)
    counts = Counter(r.tool for r in requests)
    assert len(counts) == len(bench_tools.TOOLS) == 14 and min(counts.values()) >= 14
    for r in requests:
        assert r.tool in r.offered and len(set(r.offered)) == 5
    assert len({r.offered.index(r.tool) for r in requests}) == 5  # the right tool at every position
    assert bench_tools.labelled_requests(200) == requests  # deterministic


def test_scoring_tells_valid_right_and_wrong_calls_apart():
    request = next(r for r in bench_tools.labelled_requests(20) if r.tool == "cancel_order")
    right = ToolCall.of("cancel_order", {**request.arguments})
    assert bench_tools.score(request, [right]) == {"valid": True, "right_tool": True, "right_call": True}
    wrong_value = ToolCall.of("cancel_order", {**request.arguments, "order_id": "Z0"})
    assert bench_tools.score(request, [wrong_value]) == {"valid": True, "right_tool": True, "right_call": False}
    bad_enum = ToolCall.of("cancel_order", {**request.arguments, "reason": "bored"})
    assert bench_tools.score(request, [bad_enum])["valid"] is False
    unknown = ToolCall(name="launch", arguments=json.dumps({}))
    assert bench_tools.score(request, [unknown])["valid"] is False
    assert bench_tools.score(request, [])["valid"] is False  # no call is no valid call
