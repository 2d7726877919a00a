"""Replay each golden transcript through the real CLI, then run the generated project's own
tests in a subprocess: they must pass."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.agents import read_log
from mgpt.cli import app
from testpaths import GOLDEN

TRANSCRIPTS = sorted(GOLDEN.glob("*.jsonl"))


def test_there_are_enough_golden_transcripts():
    assert len(TRANSCRIPTS) >= 4
    assert any(_fix_rounds(p) for p in TRANSCRIPTS), "one transcript must have a bug QA catches"


def _fix_rounds(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if '"action":"FixBug"' in line)


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
def test_replay_builds_a_working_project(transcript, tmp_path):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "--replay", str(transcript), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output
    # The workspace holds the documents, code, tests, a README and mgpt's own records.
    for rel in ("docs/prd.md", "docs/prd.json", "docs/design.md", "docs/design.json",
                "docs/tasks.md", "docs/tasks.json", "docs/qa_report.md", "README.md",
                ".mgpt/run.jsonl", ".mgpt/transcript.jsonl"):
        assert (ws / rel).is_file(), rel
    design = (ws / "docs/design.md").read_text()
    assert "```mermaid\nclassDiagram" in design and "```mermaid\nsequenceDiagram" in design
    assert list((ws / "tests").glob("test_*.py"))
    # The generated project's own tests pass on their own, outside mgpt.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ws, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The run log tells the story; a bug transcript shows the failing run, the fix, the pass.
    events = list(read_log(ws / ".mgpt/run.jsonl"))
    reports = [e.data["message"]["payload"]["data"] for e in events
               if e.kind == "message" and (e.data["message"]["payload"] or {}).get("type", "").endswith(":TestReport")]
    # Every report but the last sent failures back for a fix; the last one passed.
    assert reports[-1]["exit_code"] == 0 and reports[-1]["final"]
    assert reports[-1]["fix_round"] == len(reports) - 1
    assert all(r["exit_code"] != 0 and r["failed"] + r["errors"] > 0 for r in reports[:-1])
    if _fix_rounds(transcript):
        assert len(reports) > 1, "a bug transcript must show QA catching the bug"


def test_bug_transcript_without_fix_rounds_reports_failed_tests(tmp_path):
    buggy = next(p for p in TRANSCRIPTS if _fix_rounds(p))
    result = CliRunner().invoke(app, ["run", "--replay", str(buggy), "-w", str(tmp_path / "ws"), "--fix-rounds", "0"])
    assert result.exit_code == 1, result.output
    report = (tmp_path / "ws/docs/qa_report.md").read_text()
    assert "FAILED" in report


def test_a_prompt_edit_does_not_break_a_transcript(tmp_path, monkeypatch):
    import mgpt.actions.planning as planning

    monkeypatch.setattr(planning, "PROJECT_RULES", planning.PROJECT_RULES + " Prefer dataclasses.")
    transcript = next(p for p in TRANSCRIPTS if p.stem == "todo_cli")
    result = CliRunner().invoke(app, ["run", "--replay", str(transcript), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    assert "differ from the recording" in result.output
