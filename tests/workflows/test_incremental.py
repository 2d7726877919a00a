"""Incremental runs (``mgpt run IDEA -w EXISTING --inc``): a finished project is extended.

The golden runs replay recorded transcripts (``tests/golden/inc/``, made by its build.py):
due dates for the golden todo app, and a low-stock alert for a plain project mgpt did not
make. Each must keep every file it does not change byte for byte, keep the old tests (which
must still pass) and add passing new ones; the previous run's records and git history stay.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.actions.incremental import ProjectState, is_test_file, project_map, scan_project
from mgpt.cli import app
from mgpt.llm.backends.replay import Transcript
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.workflows import run_company
from mgpt.workflows.history import git_available
from mgpt.workflows.incremental import IncrementalRefused, archive_previous_run, prepare_incremental
from testpaths import GOLDEN

INC = GOLDEN / "inc"
needs_git = pytest.mark.skipif(not git_available(), reason="git is not installed")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _load(INC / "build.py", "golden_inc_build")


def _snapshot(ws: Path) -> dict[str, bytes]:
    return {rel: (ws / rel).read_bytes() for rel in BUILD_FILES(ws)}


def BUILD_FILES(ws: Path) -> list[str]:
    from mgpt.actions.incremental import project_files

    return project_files(ws)


def _invoke(*args: str):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def _own_pytest(ws: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=ws, capture_output=True, text=True, timeout=120)


def _git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_inc_extends_the_golden_todo_app(tmp_path):
    ws = tmp_path / "ws"
    first = _invoke("--replay", GOLDEN / "todo_cli.jsonl", "-w", ws)
    assert first.exit_code == 0, first.output
    before = _snapshot(ws)
    old_transcript = (ws / ".mgpt/transcript.jsonl").read_bytes()
    old_commits = _git(ws, "rev-list", "HEAD").split() if git_available() else []

    result = _invoke("--replay", INC / "todo_due_dates.jsonl", "-w", ws, "--inc")
    assert result.exit_code == 0, result.output
    assert "differ from the recording" not in result.output  # today's prompts are the recorded ones
    after = _snapshot(ws)

    changed = {"todo_cli/store.py", "todo_cli/__main__.py"}
    untouched = set(before) - changed - {p for p in before if p.startswith("docs/")}
    assert {"todo_cli/__init__.py", "tests/test_store.py", "tests/test_cli.py", "README.md"} <= untouched
    for rel in untouched:
        assert after[rel] == before[rel], f"{rel} was changed"
    for rel in changed:
        assert after[rel] != before[rel], f"{rel} was not changed"
    new_tests = {"tests/test_store_due_dates.py", "tests/test_cli_due_dates.py"}
    assert set(after) - set(before) == new_tests | {"docs/changes/001-due-dates.md"}
    # Old and new tests pass, in the run's QA report and on their own.
    report = (ws / "docs/qa_report.md").read_text()
    assert "PASSED" in report and "18 passed" in report  # 9 old + 9 new
    proc = _own_pytest(ws)
    assert proc.returncode == 0 and "18 passed" in proc.stdout, proc.stdout + proc.stderr
    # The updated PRD keeps the old requirements and adds the change's; the design says what changed.
    prd = json.loads((ws / "docs/prd.json").read_text())
    assert [r["id"] for r in prd["requirements"]] == ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
    assert "--due" in prd["requirements"][0]["text"]
    change = (ws / "docs/changes/001-due-dates.md").read_text()
    assert "# Change request: due dates" in change and "### Changed files\n- `todo_cli/store.py`" in change
    design = json.loads((ws / "docs/design.json").read_text())
    assert [f["path"] for f in design["files"]] == ["todo_cli/__init__.py", "todo_cli/store.py", "todo_cli/__main__.py"]
    # Nothing of the first run is lost: its records moved to .mgpt/runs/1, its commits stay below.
    assert (ws / ".mgpt/runs/1/transcript.jsonl").read_bytes() == old_transcript
    assert (ws / ".mgpt/runs/1/run.jsonl").is_file()
    new = Transcript.load(ws / ".mgpt/transcript.jsonl")
    assert new.header.meta["incremental"] is True and len(new.calls) == 7
    if old_commits:
        log = _git(ws, "log", "--reverse", "--format=%an|%s").splitlines()
        assert _git(ws, "rev-list", "HEAD").split()[-len(old_commits):] == old_commits
        assert log[len(old_commits)].startswith("mgpt|Start run: add due dates")
        assert "Engineer|WriteCode: the code" in log[len(old_commits):]
        assert _git(ws, "status", "--porcelain") == ""


@pytest.mark.slow
def test_inc_on_a_project_mgpt_did_not_make(tmp_path):
    ws = tmp_path / "shop"
    plain = BUILD.load_app("plain_inventory")
    BUILD.make_base(plain, ws)  # a package and its tests: no docs, no .mgpt, no git
    assert _own_pytest(ws).returncode == 0
    before = _snapshot(ws)

    result = _invoke("--replay", INC / "plain_inventory.jsonl", "-w", ws, "--inc")
    assert result.exit_code == 0, result.output
    assert "differ from the recording" not in result.output
    after = _snapshot(ws)
    for rel in ("inventory/__init__.py", "inventory/report.py", "tests/test_items.py", "tests/test_report.py"):
        assert after[rel] == before[rel], f"{rel} was changed"
    assert after["inventory/items.py"] != before["inventory/items.py"]
    assert {"inventory/alerts.py", "tests/test_items_low_stock_alert.py", "tests/test_alerts.py",
            "docs/changes/001-low-stock-alert.md", "docs/prd.json", "docs/design.json"} <= set(after) - set(before)
    assert not (ws / "README.md").exists()  # the project's README is left to the project
    assert "8 passed" in (ws / "docs/qa_report.md").read_text()  # 3 old + 5 new
    # The PM and architect worked from the map of the code, not from documents.
    calls = Transcript.load(ws / ".mgpt/transcript.jsonl").calls
    pm = calls[0].request[-1].content
    assert "no requirements document" in pm and "def format_table(inventory: Inventory) -> str" in pm
    prd = json.loads((ws / "docs/prd.json").read_text())
    assert prd["project_name"] == "inventory"
    design = json.loads((ws / "docs/design.json").read_text())
    assert [f["path"] for f in design["files"]] == [
        "inventory/__init__.py", "inventory/items.py", "inventory/report.py", "inventory/alerts.py"]
    # The engineer changing items.py saw its code; writing alerts.py it saw items.py's interface.
    eng = [c for c in calls if c.action == "WriteCode"]
    assert "The current content of `inventory/items.py`" in eng[0].request[-1].content
    assert "def total_value(self) -> float" in eng[1].request[-1].content
    assert "The current content" not in eng[1].request[-1].content


def test_inc_is_refused_on_a_missing_or_empty_workspace(tmp_path):
    result = _invoke("add due dates", "-w", tmp_path / "nope", "--inc", "-m", "test")
    assert result.exit_code == 2
    assert "does not exist" in result.output and "without --inc" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    result = _invoke("add due dates", "-w", tmp_path / "empty", "--inc", "-m", "test")
    assert result.exit_code == 2 and "holds no Python source files" in result.output


def test_a_plain_run_on_a_project_points_to_inc(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = _invoke("a todo app", "-w", tmp_path, "-m", "test")
    assert result.exit_code == 2 and "--inc" in result.output


def _plain(root: Path) -> None:
    BUILD.make_base(BUILD.load_app("plain_inventory"), root)


def test_scan_reads_a_plain_project(tmp_path):
    _plain(tmp_path)
    (tmp_path / ".venv/lib").mkdir(parents=True)
    (tmp_path / ".venv/lib/junk.py").write_text("def junk(): ...\n")
    state = scan_project(tmp_path)
    assert state.project_name == "inventory" and not state.made_by_mgpt and state.number == 1
    assert list(state.sources) == ["inventory/__init__.py", "inventory/items.py", "inventory/report.py"]
    assert state.sources["inventory/items.py"] == "Items and the inventory that holds them."
    assert state.old_tests == ["tests/test_items.py", "tests/test_report.py"]
    assert "# inventory/items.py (inventory.items)\nclass Item:" in state.map
    assert "junk" not in state.map
    assert is_test_file("tests/data/x.py") and is_test_file("conftest.py") and not is_test_file("pkg/testing.py")


def test_a_big_project_gets_a_truncated_map_that_says_what_is_left_out(tmp_path):
    sources = []
    for i in range(40):
        (tmp_path / f"mod{i:02d}.py").write_text(f'"""Module {i}."""\n\ndef f{i}(x: int) -> int:\n    """Add {i}."""\n    return x + {i}\n')
        sources.append(f"mod{i:02d}.py")
    full = project_map(tmp_path, sources, 100_000)
    small = project_map(tmp_path, sources, 600)
    assert "truncated" not in full and "def f39(x: int) -> int" in full
    assert len(small) <= 600 and "def f0(x: int) -> int" in small and "def f39" not in small
    assert "map truncated to 600 characters" in small and "module(s) left out: mod" in small
    assert "more)" in small  # even the list of names is bounded
    state = scan_project(tmp_path, budget=600)
    assert state.map == small


def test_archive_keeps_every_previous_run(tmp_path):
    mgpt = tmp_path / ".mgpt"
    (mgpt / "venv").mkdir(parents=True)
    (mgpt / "transcript.jsonl").write_text("first\n")
    assert archive_previous_run(tmp_path) == mgpt / "runs/1"
    (mgpt / "transcript.jsonl").write_text("second\n")
    assert archive_previous_run(tmp_path) == mgpt / "runs/2"
    assert (mgpt / "runs/1/transcript.jsonl").read_text() == "first\n"
    assert (mgpt / "runs/2/transcript.jsonl").read_text() == "second\n"
    assert (mgpt / "venv").is_dir()  # the project venv is a cache: it stays put
    assert archive_previous_run(tmp_path) is None


def test_inc_refuses_to_bury_an_unfinished_run(tmp_path):
    _plain(tmp_path)
    (tmp_path / ".mgpt").mkdir()
    (tmp_path / ".mgpt/transcript.jsonl").write_text(json.dumps(
        {"type": "header", "version": 1, "idea": "x", "model": "test", "meta": {}}) + "\n")
    with pytest.raises(IncrementalRefused, match="did not finish: finish it with --resume"):
        prepare_incremental(tmp_path, budget=1000)
    state, note = prepare_incremental(tmp_path, force=True, budget=1000)
    assert isinstance(state, ProjectState) and "records are in .mgpt/runs/1" in note


def _answers() -> dict[tuple[str, str], list[str]]:
    return {k: list(v) for k, v in BUILD.load_app("plain_inventory").ANSWERS.items()}


@pytest.mark.slow
def test_a_bad_design_is_sent_back_and_old_tests_cannot_be_rewritten_by_a_fix(tmp_path):
    """The architect names a file that does not exist: the error goes back to it. The
    engineer's first code has a bug; the fix tries to weaken an old test too: that file is
    refused, the code fix is taken, and the old test file is unchanged at the end."""
    _plain(tmp_path)
    old_test = (tmp_path / "tests/test_items.py").read_bytes()
    answers = _answers()
    bad_design = answers[("Architect", "WriteDesign")][0].replace('"path": "inventory/items.py"', '"path": "inventory/stock.py"')
    answers[("Architect", "WriteDesign")].insert(0, bad_design)
    good_items = answers[("Engineer", "WriteCode")][0]
    answers[("Engineer", "WriteCode")][0] = good_items.replace("i.quantity < threshold", "i.quantity <= threshold")
    fixed = good_items.split("```python\n", 1)[1].rsplit("```", 1)[0]
    answers[("Engineer", "FixBug")] = [
        "inventory/items.py\n```python\n" + fixed + "```\n\ntests/test_items.py\n```python\ndef test_nothing():\n    pass\n```\n"
    ]
    model = TestModel(answers)
    result = asyncio.run(run_company("add a low-stock alert", model=model, workspace=tmp_path, incremental=True))
    assert result.tests_passed, result.report
    assert result.report.fix_round == 1
    assert (tmp_path / "tests/test_items.py").read_bytes() == old_test
    design_asks = [msgs for ctx, msgs in model.requests if ctx.action == "WriteDesign"]
    assert len(design_asks) == 2 and "changed file inventory/stock.py does not exist" in design_asks[1][-1].content
    fix_prompt = next(msgs for ctx, msgs in model.requests if ctx.action == "FixBug")[-1].content
    assert "These old tests must pass unchanged" in fix_prompt and "tests/test_items.py" in fix_prompt


@needs_git
@pytest.mark.slow
def test_an_interrupted_incremental_run_resumes(tmp_path):
    _plain(tmp_path)
    before = _snapshot(tmp_path)
    answers = _answers()
    calls: list[str] = []

    def first(messages, context):
        if context.role == "QaEngineer":
            raise KeyboardInterrupt  # the user stops the run while QA writes tests
        calls.append(context.action)
        return answers[(context.role, context.action)].pop(0) if len(answers[(context.role, context.action)]) > 0 else ""

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_company("add a low-stock alert", model=FunctionModel(first, name="scripted"),
                                workspace=tmp_path, incremental=True))
    assert (tmp_path / "inventory/alerts.py").is_file()
    # Extending again without finishing the change would bury it: refused.
    with pytest.raises(IncrementalRefused):
        asyncio.run(run_company("something else", model=TestModel([]), workspace=tmp_path, incremental=True))
    rest = TestModel({k: v for k, v in answers.items() if k[0] == "QaEngineer"}, name="scripted")
    result = asyncio.run(run_company(None, model=rest, workspace=tmp_path, resume=True))
    assert result.tests_passed
    assert result.replayed_calls == 5 and result.new_calls == 2
    assert {c.action for c, _ in rest.requests} == {"WriteTests"}
    after = _snapshot(tmp_path)
    for rel in ("inventory/__init__.py", "inventory/report.py", "tests/test_items.py", "tests/test_report.py"):
        assert after[rel] == before[rel]
    assert (tmp_path / "docs/changes/001-low-stock-alert.md").is_file()
    assert not (tmp_path / "docs/changes/002-low-stock-alert.md").exists()


def test_inc_with_resume_of_a_run_that_was_not_incremental_is_refused(tmp_path):
    from mgpt.llm.backends.replay import TranscriptHeader
    from mgpt.workflows.incremental import check_resumable

    header = TranscriptHeader(idea="x", model="test", meta={})
    with pytest.raises(IncrementalRefused, match="not an incremental run"):
        check_resumable(header, tmp_path, incremental=True)
    assert check_resumable(header, tmp_path, incremental=False) is False
    no_git = TranscriptHeader(idea="x", model="test", meta={"incremental": True})
    with pytest.raises(IncrementalRefused, match="no git history"):
        check_resumable(no_git, tmp_path, incremental=False)


def test_inc_refuses_review_of_the_change_documents(tmp_path):
    _plain(tmp_path)
    with pytest.raises(IncrementalRefused, match="--review prd is not available with --inc"):
        asyncio.run(run_company("x", model=TestModel([]), workspace=tmp_path, incremental=True,
                                review=["prd", "code"], reviewer=lambda step, doc: None))
    assert not (tmp_path / ".mgpt").exists()  # refused before anything was touched
