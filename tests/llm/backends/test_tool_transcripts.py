"""Tool calls in transcripts: a replay gives the same result without running a tool, and a
resume after a kill in the middle of a tool loop repeats no finished model call."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mgpt.actions.base import UseTools
from mgpt.agents.message import UserRequirement
from mgpt.agents.team import Team
from mgpt.agents.tools import ToolCall, tool
from mgpt.llm.backends.replay import RecordingModel, ReplayModel, ResumeModel, Transcript
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.roles.base import Role

RUNS: list[str] = []


@tool
def stock(item: str) -> str:
    """How many of an item are in stock (changes every time: replay must not call it)."""
    RUNS.append(item)
    return f"{item}: {len(RUNS) * 7} left"


def clerk() -> Role:
    return Role(name="Clerk", actions=[UseTools], watch=[UserRequirement], tools=[stock])


def script() -> TestModel:
    return TestModel([
        [ToolCall.of("stock", {"item": "pens"}, id="call_a"), ToolCall.of("stock", {"item": "ink"}, id="call_b")],
        [ToolCall.of("stock", {"item": "paper"}, id="call_c")],
        "We have pens, ink and paper.",
    ])


def test_a_transcript_with_tool_calls_replays_to_the_same_result(tmp_path):
    RUNS.clear()
    path = tmp_path / "t.jsonl"
    recorder = RecordingModel(script(), path)
    first = asyncio.run(Team(model=recorder).hire(clerk()).run("what is in stock?"))
    recorder.close()
    assert len(RUNS) == 3
    transcript = Transcript.load(path)
    assert len(transcript.calls) == 3 and len(transcript.tool_results) == 2
    assert transcript.calls[0].tools == ["stock"] and transcript.calls[0].response.tool_calls[0].id == "call_a"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["type"] for x in lines] == ["header", "call", "tools", "call", "tools", "call"]

    RUNS.clear()
    replay = ReplayModel(path, strict_prompts=True)  # the same prompts, tool results included
    second = asyncio.run(Team(model=replay).hire(clerk()).run("what is in stock?"))
    assert RUNS == []  # no tool ran again
    assert [m.content for m in second.messages] == [m.content for m in first.messages]
    assert replay.unused == []


KILLED_RUN = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_tool_transcripts import clerk, script
    from mgpt.agents.team import Team
    from mgpt.llm.backends.replay import RecordingModel
    from mgpt.llm.backends.testing import FunctionModel

    scripted = script()
    calls = []

    def answer(messages, context, tools=None):
        calls.append(context.turn)
        if len(calls) == 3:  # the third model call: killed before it answers
            os.kill(os.getpid(), signal.SIGKILL)
        return scripted.complete(messages, context=context, tools=tools)

    model = RecordingModel(FunctionModel(answer), {path!r})
    asyncio.run(Team(model=model).hire(clerk()).run("what is in stock?"))
    """
)


@pytest.mark.slow
def test_resume_after_a_kill_in_a_tool_loop_repeats_no_finished_model_call(tmp_path):
    path = tmp_path / "t.jsonl"
    code = KILLED_RUN.format(tests=str(Path(__file__).parent), path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    previous = Transcript.load(path, resuming=True)
    assert len(previous.calls) == 2 and len(previous.tool_results) == 2  # killed mid-loop

    RUNS.clear()
    made = []

    def answer(messages, context, tools=None):
        made.append(context.turn)
        assert [m.role for m in messages[-2:]] == ["assistant", "tool"]  # the recorded results went back
        return "We have pens, ink and paper."

    resumer = ResumeModel(FunctionModel(answer), previous.calls, source=path, tool_results=previous.tool_results)
    result = asyncio.run(Team(model=resumer).hire(clerk()).run("what is in stock?"))
    assert made == [3]  # the real model gets one call: the one the kill interrupted
    assert resumer.replayed == [("Clerk", "UseTools", 1), ("Clerk", "UseTools", 2)]
    assert resumer.made == [("Clerk", "UseTools", 3)]
    assert RUNS == []  # the tools the killed run finished are not run again
    assert result.messages[-1].content == "We have pens, ink and paper."
