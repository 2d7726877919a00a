"""``mgpt chat`` with tools: --tool module:function and --mcp servers, the loop in a chat."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.agents.tools import ToolCall
from mgpt.cli import app
from mgpt.llm.backends.testing import TestModel
from mgpt.llm.serve import chat

runner = CliRunner()


def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@pytest.fixture
def scripted(monkeypatch):
    model = TestModel([[ToolCall.of("shout", {"text": "hi"}), ToolCall.of("nope")], "It says HI."])
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: model)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return model


def test_a_chat_question_runs_the_tool_loop(scripted):
    result = runner.invoke(app, ["chat", "-m", "test", "--tool", "test_chat_tools:shout", "shout hi"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "It says HI.\n"
    assert "[tool] shout" in result.stderr and "-> ok: HI" in result.stderr
    assert "[tool] nope({}) -> error" in result.stderr  # an unknown tool is a result, not a crash
    offered = scripted.tools[0]
    assert offered.names() == ["shout"]
    second = scripted.requests[1][1]
    assert [m.role for m in second[-3:]] == ["assistant", "tool", "tool"]


def test_a_bad_tool_spec_is_a_clear_error(scripted):
    result = runner.invoke(app, ["chat", "-m", "test", "--tool", "no_such_module:f", "hi"])
    assert result.exit_code == 2 and "--tool no_such_module:f" in result.output


@pytest.mark.slow
def test_an_mcp_server_in_a_chat(monkeypatch):
    pytest.importorskip("mcp_server_time")
    model = TestModel([[ToolCall.of("get_current_time", {"timezone": "UTC"})], "done"])
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: model)
    server = f"{sys.executable} -m mcp_server_time --local-timezone UTC"
    result = runner.invoke(app, ["chat", "-m", "test", "--mcp", server, "what time is it?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "done\n" and '"timezone": "UTC"' in model.requests[1][1][-1].content
