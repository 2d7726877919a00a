"""``mgpt service`` driven with scripted input, and ``mgpt eval service`` end to end, on the
tiny retail data (no download) with scripted models."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mgpt.agents.tools import ToolCall
from mgpt.cli import app
from mgpt.domains.retail import RetailData, RetailStore
from mgpt.domains.retail.testing import tiny_data
from mgpt.llm.backends.testing import TestModel
from mgpt.llm.serve import chat

runner = CliRunner()


@pytest.fixture
def data(tmp_path, monkeypatch):
    tiny = tiny_data(tmp_path / "data")
    monkeypatch.setattr(RetailData, "load", classmethod(lambda cls, **kw: tiny))
    return tiny


def agent(*replies) -> TestModel:
    return TestModel({("SupportAgent", "AnswerCustomer"): list(replies)})


def test_a_person_talks_to_the_team_and_the_store_file_keeps_the_change(tmp_path, data, monkeypatch):
    store = tmp_path / "shop.sqlite"
    model = agent(
        [ToolCall.of("find_user_id_by_email", {"email": "ann.lee@example.com"})],
        "Shall I cancel #W1 (reason: no longer needed)? Please say yes.",
        [ToolCall.of("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})],
        "Order #W1 is cancelled.",
    )
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: model)
    script = "I am ann.lee@example.com, cancel #W1\nyes\n/history\n/exit\n"
    result = runner.invoke(app, ["service", "--store", str(store), "-m", "scripted", "--plain",
                                 "--log", str(tmp_path / "desk.jsonl")], input=script)
    assert result.exit_code == 0, result.output
    assert "SupportAgent: Hi! How can I help you today?" in result.output
    assert "Shall I cancel #W1" in result.output and "Order #W1 is cancelled." in result.output
    assert "[tool] cancel_pending_order" in result.output  # each call shown (on stderr)
    assert RetailStore.open(store).snapshot()["orders"]["#W1"]["status"] == "cancelled"
    kinds = {json.loads(line)["kind"] for line in (tmp_path / "desk.jsonl").read_text().splitlines()}
    assert {"message", "llm_call", "tool_call", "tool_result"} <= kinds

    # another session on the same store sees the change; one message, then exit
    model = agent([ToolCall.of("get_order_details", {"order_id": "#W1"})], "It is cancelled.")
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: model)
    result = runner.invoke(app, ["service", "--store", str(store), "-m", "scripted", "status of #W1?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "It is cancelled.\n"
    assert '"status": "cancelled"' in model.requests[-1][1][-1].content  # the tool result the agent read


def test_the_checker_declines_an_unconfirmed_change_at_the_desk(tmp_path, data, monkeypatch):
    store = tmp_path / "shop.sqlite"
    model = agent([ToolCall.of("find_user_id_by_email", {"email": "ann.lee@example.com"})],
                  [ToolCall.of("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})],
                  "I need your confirmation first.")
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: model)
    result = runner.invoke(app, ["service", "--store", str(store), "-m", "scripted", "ann.lee@example.com: cancel #W1"])
    assert result.exit_code == 0, result.output
    assert "the reviewer declined this call: the customer has not confirmed" in result.output
    assert RetailStore.open(store).snapshot()["orders"]["#W1"]["status"] == "pending"


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path, data, monkeypatch):
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: agent("hi"))
    bad = tmp_path / "notes.txt"
    bad.write_text("not a database")
    result = runner.invoke(app, ["service", "--store", str(bad), "-m", "scripted", "hello"])
    assert result.exit_code == 2 and "is not a retail store" in result.output


def test_eval_service_runs_grades_and_replays(tmp_path, data):
    # `-m test` has no script: every conversation ends at the agent's first turn, in an error
    out = tmp_path / "ev"
    result = runner.invoke(app, ["eval", "service", "-m", "test", "--split", "base", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pass^1" in result.stdout and "0.000" in result.stdout and "error 2" in result.stdout
    assert "[2/2] task" in result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["count"] == 2 and saved["team"] == "SupportAgent + PolicyChecker"
    assert (out / "index.html").is_file() and (out / "task-1-trial-1" / ".mgpt" / "report.html").is_file()

    again = runner.invoke(app, ["eval", "service", "--replay", str(out), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again" / "results.json").read_text())["passed"] == 0


def test_eval_service_bad_input_exits_2(tmp_path, data):
    both = runner.invoke(app, ["eval", "service", "-m", "test", "--replay", str(tmp_path), "--out", str(tmp_path / "x")])
    assert both.exit_code == 2 and "give --model" in both.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("1")
    full = runner.invoke(app, ["eval", "service", "-m", "test", "--out", str(tmp_path / "full")])
    assert full.exit_code == 2 and "not an empty folder" in full.output
    unknown = runner.invoke(app, ["eval", "service", "-m", "test", "--task", "99", "--out", str(tmp_path / "y")])
    assert unknown.exit_code == 2 and "no task 99" in unknown.output


def test_the_service_sop_runs_a_task_and_its_transcript_replays_with_mgpt_run(tmp_path, data):
    import asyncio

    from mgpt.workflows.harness import RunOptions
    from mgpt.workflows.service import STORE_FILE, run_service

    model = TestModel({
        ("Customer", "SpeakAsCustomer"): ["I am ann.lee@example.com, cancel #W1 please", "yes", "###STOP###"],
        ("SupportAgent", "AnswerCustomer"): [
            [ToolCall.of("find_user_id_by_email", {"email": "ann.lee@example.com"})], "Cancel #W1 (yes)?",
            [ToolCall.of("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})], "Done."],
    })
    first = asyncio.run(run_service("task 1", model=model, options=RunOptions(workspace=tmp_path / "ws", history=False)))
    assert first.ok and first.conversation.verdict["passed"] and first.files == [STORE_FILE]
    assert RetailStore.open(tmp_path / "ws" / STORE_FILE).snapshot()["orders"]["#W1"]["status"] == "cancelled"

    replayed = runner.invoke(app, ["run", "--sop", "service", "--replay", str(first.transcript), "-w",
                                   str(tmp_path / "again")])
    assert replayed.exit_code == 0, replayed.output  # the idea "retail task 1" comes from the transcript
    report = (tmp_path / "again" / ".mgpt" / "report.html").read_text()
    assert "PASSED" in report and "Done." in report
    # a replay answers the tool calls from the transcript: its own store was not touched
    assert RetailStore.open(tmp_path / "again" / STORE_FILE).snapshot()["orders"]["#W1"]["status"] == "pending"


def test_the_service_sop_refuses_an_unknown_task(tmp_path, data):
    result = runner.invoke(app, ["run", "--sop", "service", "task 77", "-m", "test", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "there is no retail task '77'" in result.output
