"""``mgpt batch`` from the command line: the summary, --json, --resume, the shared
budget's exit code, and bad input as one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from testpaths import GOLDEN


def _ideas(tmp_path):
    path = tmp_path / "ideas.jsonl"
    path.write_text("".join(json.dumps({"model": f"replay:{p}"}) + "\n" for p in sorted(GOLDEN.glob("*.jsonl"))))
    return path


@pytest.mark.slow
def test_batch_runs_every_idea_sums_up_and_resumes(tmp_path):
    ideas, out = _ideas(tmp_path), tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(ideas), "-o", str(out), "--workers", "2", "--budget", "1",
                                      "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output and "2 local process(es)" in result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    runs = len(list(GOLDEN.glob("*.jsonl")))
    assert summary["passed"] == runs == len(summary["runs"]) and summary["spend"]["cost"] > 0
    for run in summary["runs"]:
        assert (out / run["id"] / "README.md").is_file() and run["result"]["tests"]["failed"] == 0
    again = CliRunner().invoke(app, ["batch", str(ideas), "-o", str(out), "--resume"])
    assert again.exit_code == 0 and f"({runs} finished earlier, skipped)" in again.output, again.output


@pytest.mark.slow
def test_a_batch_the_budget_stops_exits_3_and_finishes_on_resume(tmp_path):
    ideas, out = _ideas(tmp_path), tmp_path / "out"
    stopped = CliRunner().invoke(app, ["batch", str(ideas), "-o", str(out), "--workers", "2", "--budget", "0.002",
                                       "--json", str(tmp_path / "s.json")])
    assert stopped.exit_code == 3, stopped.output
    assert "by the budget" in stopped.output and "--resume" in stopped.output
    assert json.loads((tmp_path / "s.json").read_text())["spend"]["cost"] <= 0.002
    done = CliRunner().invoke(app, ["batch", str(ideas), "-o", str(out), "--resume", "--budget", "1",
                                    "--json", str(tmp_path / "s2.json")])
    assert done.exit_code == 0, done.output
    runs = json.loads((tmp_path / "s2.json").read_text())["runs"]
    assert any(r["result"]["replayed_calls"] > 0 for r in runs if r["attempts"] > 1)  # continued, not redone


@pytest.mark.parametrize("content, message", [
    ("", "holds no ideas"),
    ('{"idea": "x", "model": "test", "options": {"colour": 1}}\n', "colour is not an option"),
    ("an idea\n", "has no model"),
])
def test_bad_batches_are_one_line_errors(tmp_path, content, message):
    ideas = tmp_path / "ideas.txt"
    ideas.write_text(content)
    result = CliRunner().invoke(app, ["batch", str(ideas), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_live_view_shows_each_runs_state(tmp_path):
    import io

    from rich.console import Console

    from mgpt.agents.budget import Spend
    from mgpt.agents.runner import TaskOutcome, TaskUpdate
    from mgpt.cli.batch import describe_run
    from mgpt.cli.live import BatchView

    done = TaskOutcome(id="001-todo", status="done", seconds=4.2, spend=Spend(cost=0.0012),
                       result={"ok": True, "tests": {"passed": 9, "failed": 0, "errors": 0}, "stop_reason": "idle"})
    updates = [TaskUpdate("001-todo", "queued"), TaskUpdate("001-todo", "running", 1, "pid 7"),
               TaskUpdate("002-calc", "running", 1, "node ab12 pid 9"),
               TaskUpdate("002-calc", "retrying", 1, "node ab12 pid 9", "WorkerCrashedError: the worker died"),
               TaskUpdate("001-todo", "done", 1, "pid 7", outcome=done)]
    plain = io.StringIO()
    with BatchView(Console(file=plain, width=200), describe=describe_run) as view:
        for update in updates:
            view(update)
    assert plain.getvalue().splitlines() == [
        "001-todo: running on pid 7",
        "002-calc: running on node ab12 pid 9",
        "002-calc: retrying on node ab12 pid 9: WorkerCrashedError: the worker died",
        "001-todo: passed: tests 9 passed, 0 failed; $0.0012; 4.2 s",
    ]
    live = io.StringIO()
    with BatchView(Console(file=live, width=200, force_terminal=True), describe=describe_run) as view:
        for update in updates:
            view(update)
    assert "1 passed, 1 retrying" in live.getvalue() and "node ab12 pid 9" in live.getvalue()
