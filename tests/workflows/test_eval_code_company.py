"""``mgpt eval company``: the company run on a list of ideas, replayed from the golden
transcripts; tests-pass share, first-try parse share (unit_converter's design needed a
second try), tokens and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.llm.backends.replay import ReplayModel, Transcript
from mgpt.workflows.company_eval import run_company_eval, structured_first_try
from testpaths import GOLDEN



def test_first_try_parse_counts_from_a_transcript():
    assert structured_first_try(Transcript.load(GOLDEN / "todo_cli.jsonl")) == (3, 3)
    assert structured_first_try(Transcript.load(GOLDEN / "unit_converter.jsonl")) == (3, 2)


def test_company_eval_over_two_ideas(tmp_path):
    by_idea = {Transcript.load(GOLDEN / f"{name}.jsonl").header.idea: GOLDEN / f"{name}.jsonl"
               for name in ("todo_cli", "unit_converter")}
    seen = []
    out = tmp_path / "r.json"
    result = run_company_eval(lambda idea: ReplayModel(by_idea[idea]), list(by_idea), tmp_path / "runs",
                              json_out=out, on_idea=seen.append)
    assert [i.idea for i in seen] == list(by_idea)
    assert result.tests_pass_share == 1.0
    assert result.first_try_parse_share == pytest.approx(5 / 6)
    data = json.loads(out.read_text())
    recorded = sum(c.response.usage.completion_tokens for p in by_idea.values() for c in Transcript.load(p).calls)
    assert data["completion_tokens"] == recorded and data["ideas_evaluated"] == 2
    assert all(Path(i["workspace"]).is_dir() and i["seconds"] > 0 for i in data["ideas"])


def test_company_command_records_a_failed_run_and_goes_on(tmp_path):
    from mgpt.cli import app

    todo = GOLDEN / "todo_cli.jsonl"
    ideas = tmp_path / "ideas.txt"
    idea = Transcript.load(todo).header.idea
    ideas.write_text(f"# the golden todo app, twice: the second replay has too few rounds\n{idea}\n")
    out = tmp_path / "company.json"
    r = CliRunner().invoke(app, ["eval", "company", str(ideas), "--model", f"replay:{todo}", "--out",
                                 str(tmp_path / "runs"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "projects whose tests pass" in r.stdout and "1.000" in r.stdout
    r = CliRunner().invoke(app, ["eval", "company", str(ideas), "--model", f"replay:{todo}", "--out",
                                 str(tmp_path / "runs2"), "--max-rounds", "1", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["tests_pass_share"] == 0.0 and data["ideas"][0]["stop_reason"] == "max_rounds"
    # Bad input: a used output folder, an empty ideas file.
    r = CliRunner().invoke(app, ["eval", "company", str(ideas), "--model", f"replay:{todo}", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "not empty" in r.output
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    r = CliRunner().invoke(app, ["eval", "company", str(tmp_path / "empty.txt"), "--model", "test", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "holds no ideas" in r.output
