"""Human review: approve, edit and feedback, from Python (a reviewer callback) and from a
terminal (a scripted pty session with a fake $EDITOR); decisions are recorded and repeated
by a replay or a resume without asking."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.llm.parsing import extract_json
from mgpt.agents.runlog import read_log
from mgpt.cli import app
from mgpt.llm.backends.replay import ReplayModel, Transcript
from mgpt.llm.backends.testing import FunctionModel
from mgpt.workflows.history import git_available
from mgpt.workflows.review import SourceFiles, approve, edit, feedback, parse_steps
from mgpt.workflows.software_company import run_company
from testpaths import GOLDEN

TODO = GOLDEN / "todo_cli.jsonl"
REVISED_SUMMARY = "A command-line todo list kept in todos.json in the current folder."


def _answers() -> dict[tuple[str, str, int], str]:
    answers = {}
    for line in TODO.read_text().splitlines():
        data = json.loads(line)
        if data["type"] == "call":
            answers[(data["role"], data["action"], data["turn"])] = data["response"]["text"]
    prd = extract_json(answers[("ProductManager", "WritePRD", 1)])
    answers[("ProductManager", "WritePRD", 2)] = json.dumps({**prd, "summary": REVISED_SUMMARY})
    return answers


def _model(asked: list | None = None) -> FunctionModel:
    answers = _answers()

    def answer(messages, context):
        if asked is not None:
            asked.append((context.role, context.action, context.turn, messages[-1].content))
        return answers[(context.role, context.action, context.turn)]

    return FunctionModel(answer, name="function:todo")


def _project(ws: Path) -> dict[str, str]:
    return {p.relative_to(ws).as_posix(): p.read_text() for p in sorted(ws.rglob("*"))
            if p.is_file() and p.relative_to(ws).parts[0] not in (".mgpt", ".git")}


def test_parse_steps():
    assert parse_steps("prd, code,prd") == ["prd", "code"]
    with pytest.raises(Exception, match="unknown review step qa: choose from prd, design, tasks, code"):
        parse_steps("prd,qa")


def test_python_reviewer_feedback_edit_approve_and_replay(tmp_path):
    seen: list[tuple[str, str]] = []

    async def reviewer(step, document):  # async, as a web UI's would be
        seen.append((step, type(document).__name__))
        if step == "prd" and len([s for s in seen if s[0] == "prd"]) == 1:
            return feedback("say where the todos are kept")
        if step == "design":
            return edit({**document.model_dump(), "implementation_approach": "EDITED: one store module."})
        if step == "code":
            files = dict(document.files)
            files["todo_cli/__init__.py"] = '"""Edited by the reviewer."""\n' + files["todo_cli/__init__.py"]
            return edit(SourceFiles(files=files))
        return approve()

    asked: list = []
    ws = tmp_path / "ws"
    result = asyncio.run(run_company(
        "build a todo app: a command-line todo list that keeps its items in a JSON file",
        model=_model(asked), workspace=ws, review=["prd", "design", "tasks", "code"], reviewer=reviewer,
    ))
    assert result.tests_passed
    assert seen == [("prd", "PRD"), ("prd", "PRD"), ("design", "SystemDesign"),
                    ("tasks", "TaskList"), ("code", "SourceFiles")]
    # The PM revised with the feedback (its second WritePRD call carried it).
    revision = next(a for a in asked if a[:3] == ("ProductManager", "WritePRD", 2))
    assert "say where the todos are kept" in revision[3]
    assert json.loads((ws / "docs/prd.json").read_text())["summary"] == REVISED_SUMMARY
    assert REVISED_SUMMARY in (ws / "docs/prd.md").read_text()
    assert "EDITED: one store module." in (ws / "docs/design.md").read_text()
    assert (ws / "todo_cli/__init__.py").read_text().startswith('"""Edited by the reviewer."""')
    # The architect built on the revised PRD, the project manager on the edited design.
    assert any(REVISED_SUMMARY in a[3] for a in asked if a[1] == "WriteDesign")
    assert any("EDITED: one store module." in a[3] for a in asked if a[1] == "WriteTasks")
    transcript = Transcript.load(ws / ".mgpt/transcript.jsonl")
    assert [(r.step, r.round, r.decision) for r in transcript.reviews] == [
        ("prd", 1, "feedback"), ("prd", 2, "approve"), ("design", 1, "edit"),
        ("tasks", 1, "approve"), ("code", 1, "edit"),
    ]
    assert [e.detail for e in read_log(ws / ".mgpt/run.jsonl") if e.kind == "review"][:2] == [
        "prd: revised (round 1)", "prd: approved"]
    if git_available():
        log = subprocess.run(["git", "-C", str(ws), "log", "--reverse", "--format=%an|%s"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert "ProductManager|WritePRD: revised after review feedback (round 1)" in log
        assert "Reviewer|Review design: edited by the reviewer" in log
        assert "Reviewer|Review code: edited by the reviewer" in log

    # Replaying the workspace's transcript repeats every decision without asking anyone.
    again = tmp_path / "again"
    replayed = asyncio.run(run_company(transcript.header.idea,
                                       model=ReplayModel(ws / ".mgpt/transcript.jsonl"), workspace=again))
    assert replayed.tests_passed and not replayed.unused_replay_calls
    assert _project(again) == _project(ws)


def test_feedback_rounds_are_bounded_and_a_broken_edit_is_asked_again(tmp_path):
    answers: list = []

    def reviewer(step, document):
        answers.append(step)
        if step == "prd":
            return "more detail please"  # plain text is feedback
        if step == "design" and answers.count("design") == 1:
            return edit({"files": "not a list"})  # refused, asked again
        return None  # approve

    ws = tmp_path / "ws"
    result = asyncio.run(run_company(
        "build a todo app: a command-line todo list that keeps its items in a JSON file",
        model=_model(), workspace=ws, review=["prd", "design"], reviewer=reviewer, review_rounds=1,
    ))
    assert result.tests_passed
    assert answers == ["prd", "prd", "design", "design"]
    details = [e.detail for e in read_log(ws / ".mgpt/run.jsonl") if e.kind in ("review", "bound")]
    assert "prd: review_rounds=1 used; keeping the last version" in details
    assert any(d.startswith("design: edit refused: implementation_approach: Field required") for d in details), details


def test_resume_repeats_review_decisions_without_asking(tmp_path):
    class Interrupted(Exception):
        pass

    def first(step, document):
        if step == "code":
            raise Interrupted  # the laptop closes while the code is on screen
        return feedback("say where the todos are kept") if calls.count("prd") == 1 and step == "prd" else approve()

    calls: list = []

    def count(step, document):
        calls.append(step)
        return first(step, document)

    ws = tmp_path / "ws"
    with pytest.raises(Interrupted):
        asyncio.run(run_company("build a todo app: a command-line todo list that keeps its items in a JSON file",
                                model=_model(), workspace=ws, review=["prd", "design", "code"], reviewer=count))
    assert calls == ["prd", "prd", "design", "code"]
    asked_again: list = []
    result = asyncio.run(run_company(None, model=_model(), workspace=ws, resume=True,
                                     reviewer=lambda step, doc: asked_again.append(step)))
    # PRD twice, design, tasks and three files were answered from the transcript; only
    # QA's two test files were asked of the model.
    assert result.tests_passed and (result.replayed_calls, result.new_calls) == (7, 2)
    assert asked_again == ["code"]  # prd and design were decided before the interruption
    assert json.loads((ws / "docs/prd.json").read_text())["summary"] == REVISED_SUMMARY


def test_review_without_a_terminal_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["run", "--replay", str(TODO), "-w", str(tmp_path / "ws"), "--review", "prd"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --review needs a terminal to ask you on (stdin is not a tty); from Python pass "
        "run_company(..., reviewer=...)"]
    assert not (tmp_path / "ws").exists()


FAKE_EDITOR = textwrap.dedent('''\
    import json, pathlib, sys
    path = pathlib.Path(sys.argv[1])
    state = pathlib.Path(sys.argv[0]).with_suffix(".count")
    n = int(state.read_text()) if state.exists() else 0
    state.write_text(str(n + 1))
    if n == 0:  # first edit: a typo that breaks the JSON
        path.write_text(path.read_text().replace('"implementation_approach"', '"implementation_approach" "'))
    else:       # second: the user fixes the typo and makes the change
        text = path.read_text().replace('"implementation_approach" "', '"implementation_approach"')
        data = json.loads(text)
        data["implementation_approach"] = "EDITED IN THE TERMINAL"
        path.write_text(json.dumps(data))
''')


@pytest.mark.slow
def test_terminal_review_in_a_pty(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    transcript = tmp_path / "todo_review.jsonl"
    lines = TODO.read_text().splitlines()
    prd_call = json.loads(lines[1])
    revised = {**prd_call, "turn": 2, "response": {**prd_call["response"], "text": _answers()[("ProductManager", "WritePRD", 2)]}}
    transcript.write_text("\n".join([*lines, json.dumps(revised)]) + "\n")
    editor = tmp_path / "fake_editor.py"
    editor.write_text(FAKE_EDITOR)
    ws = tmp_path / "ws"
    env = {**os.environ, "EDITOR": f"{sys.executable} {editor}", "TERM": "dumb", "COLUMNS": "160"}
    child = pexpect.spawn(sys.executable, ["-m", "mgpt", "run", "--replay", str(transcript), "-w", str(ws),
                                           "--review", "prd,design,code"],
                          env=env, encoding="utf-8", timeout=60, dimensions=(50, 160))
    try:
        child.expect(r"prd: \[a\]pprove")
        child.sendline("f")
        child.expect("feedback")
        child.sendline("say where the todos are kept")
        child.expect("todos.json in the current folder")  # the revised PRD is shown
        child.expect(r"prd: \[a\]pprove")
        child.sendline("")  # Enter approves
        child.expect(r"design: \[a\]pprove")
        child.sendline("e")
        child.expect("the edited design is not valid")
        child.expect("Enter to edit again")
        child.sendline("")
        child.expect(r"code: \[a\]pprove")
        child.sendline("a")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert json.loads((ws / "docs/prd.json").read_text())["summary"] == REVISED_SUMMARY
    assert json.loads((ws / "docs/design.json").read_text())["implementation_approach"] == "EDITED IN THE TERMINAL"
    decisions = [(r.step, r.decision) for r in Transcript.load(ws / ".mgpt/transcript.jsonl").reviews]
    assert decisions == [("prd", "feedback"), ("prd", "approve"), ("design", "edit"), ("code", "approve")]


def test_code_feedback_is_revised_by_the_engineer(tmp_path):
    answers = _answers()
    revised_init = '"""A command-line todo list (revised)."""\n\nfrom todo_cli.store import Todo, TodoStore\n\n__all__ = ["Todo", "TodoStore"]\n'
    answers[("Engineer", "WriteCode", 4)] = f"## todo_cli/__init__.py\n```python\n{revised_init}```\n"
    prompts = []

    def answer(messages, context):
        prompts.append((context.role, context.action, context.turn, messages[-1].content))
        return answers[(context.role, context.action, context.turn)]

    decisions = iter([feedback("say it was revised in the package docstring"), approve()])
    ws = tmp_path / "ws"
    result = asyncio.run(run_company(
        "build a todo app: a command-line todo list that keeps its items in a JSON file",
        model=FunctionModel(answer, name="function:todo"), workspace=ws, review=["code"],
        reviewer=lambda step, doc: next(decisions),
    ))
    assert result.tests_passed
    assert (ws / "todo_cli/__init__.py").read_text() == revised_init
    revision = next(p for p in prompts if p[:3] == ("Engineer", "WriteCode", 4))
    assert "say it was revised" in revision[3] and "## todo_cli/store.py" in revision[3]
    # What the engineer published still lists every file it wrote, in order.
    wrote = next(e for e in read_log(ws / ".mgpt/run.jsonl") if e.kind == "message" and e.role == "Engineer")
    assert wrote.data["message"]["payload"]["data"]["files"] == [
        "todo_cli/store.py", "todo_cli/__init__.py", "todo_cli/__main__.py"]
