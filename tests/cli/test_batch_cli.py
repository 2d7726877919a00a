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
