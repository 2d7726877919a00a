"""The steps that make several calls at once: WriteCode along the files' dependencies,
WriteTests per module, FixBug per independent failure. Each call is keyed by its place in
the plan, so the prompts, answers and files are the same at any ``parallel``; the limit
holds; a failing call cancels none of its siblings' work; the budget holds with calls in flight."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from mgpt.actions.base import ActionContext, ActionError
from mgpt.actions.coding import FixBug, RunTests, WriteCode, failure_groups
from mgpt.actions.documents import CodeBundle, SystemDesign, TaskList, TestReport
from mgpt.actions.planning import WriteDesign, WriteTasks
from mgpt.agents.budget import Budget
from mgpt.agents.errors import BudgetExceeded
from mgpt.agents.message import Message
from mgpt.agents.scheduler import Launch, run_all
from mgpt.llm.backends.base import CallContext, Completion, Usage
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.replay import RecordingModel, ReplayModel, Transcript
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.llm.parsing import extract_json
from mgpt.memory import InMemory
from testpaths import GOLDEN

LIBRARY = GOLDEN / "lending_library.jsonl"


def _documents() -> tuple[SystemDesign, TaskList]:
    golden = Transcript.load(LIBRARY)
    design_reply = next(c for c in golden.calls if c.action == "WriteDesign").response.text
    tasks_reply = next(c for c in golden.calls if c.action == "WriteTasks").response.text
    design = SystemDesign.model_validate(extract_json(design_reply))
    return design, TaskList.from_plan(extract_json(tasks_reply), [f.path for f in design.files])


async def _context(tmp_path: Path, parallel: int) -> ActionContext:
    design, tasks = _documents()
    memory = InMemory()
    await memory.add(Message(content="design", payload=design, cause_by=WriteDesign))
    return ActionContext(
        role_name="Engineer", role_profile="software engineer", role_goal="correct, readable, tested Python",
        news=[Message(content="tasks", payload=tasks, cause_by=WriteTasks)], memory=memory,
        workspace=tmp_path, settings={"parallel": parallel},
    )


class Timed:
    """The golden answers, each after a random delay; records when each call ran."""

    def __init__(self, seed: int, fail_turn: int | None = None):
        self.golden = ReplayModel(LIBRARY)
        self.rng = random.Random(seed)
        self.fail_turn = fail_turn
        self.spans: dict[int, tuple[float, float]] = {}
        self.now = self.most = 0

    async def __call__(self, messages, context: CallContext):
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.rng.uniform(0.005, 0.05))
            if context.turn == self.fail_turn:
                raise RuntimeError(f"turn {context.turn} failed")
            return await self.golden.complete(messages, context=context)
        finally:
            self.now -= 1
            self.spans[context.turn] = (start, loop.time())


def _write_code(tmp_path: Path, parallel: int, model: Timed, record: Path | None = None):
    async def main():
        ctx = await _context(tmp_path, parallel)
        inner = FunctionModel(model, name="openai:gpt-4o-mini")
        backend = RecordingModel(inner, record) if record else inner
        action = WriteCode().bind(LLM(backend, role="Engineer"))
        try:
            return await action.run(ctx)
        finally:
            if record:
                backend.close()

    return asyncio.run(main())


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.py"))}


def test_files_are_written_along_their_dependencies_within_the_limit(tmp_path):
    design, tasks = _documents()
    order = [t.path for t in tasks.tasks]
    model = Timed(seed=3)
    bundle = _write_code(tmp_path / "p4", 4, model)
    assert bundle.files == order
    assert model.most == 4  # the limit holds, and is reached: twelve files, several ready at once
    for turn, task in enumerate(tasks.tasks, 1):  # a file's call starts after its dependencies' calls end
        for dep in task.depends_on:
            assert model.spans[order.index(dep) + 1][1] <= model.spans[turn][0], (task.path, dep)
    one = Timed(seed=4)
    _write_code(tmp_path / "p1", 1, one)
    assert one.most == 1
    # The same files, byte for byte, however the calls overlapped.
    assert _files(tmp_path / "p4") == _files(tmp_path / "p1") and len(_files(tmp_path / "p1")) == 12


def test_each_call_is_keyed_by_its_file_not_by_when_it_ran(tmp_path):
    """The prompts (with the interfaces each file builds on) match the golden recording turn
    for turn, whatever order the calls finished in: a replay and a resume stay exact."""
    model = Timed(seed=11)
    _write_code(tmp_path / "ws", 8, model, record=tmp_path / "t.jsonl")
    recorded = {c.turn: c for c in Transcript.load(tmp_path / "t.jsonl").calls}
    golden = {c.turn: c for c in Transcript.load(LIBRARY).calls if c.action == "WriteCode"}
    assert set(recorded) == set(golden)
    for turn, call in golden.items():
        assert recorded[turn].request == call.request and recorded[turn].response.text == call.response.text
    assert model.golden.drifted == []
    # They did not finish in plan order (so the test shows something).
    finished = sorted(model.spans, key=lambda t: model.spans[t][1])
    assert finished != sorted(finished)


def test_a_failing_call_cancels_none_of_its_siblings_finished_work(tmp_path):
    design, tasks = _documents()
    order = [t.path for t in tasks.tasks]
    failing = order.index("lending_library/fines.py") + 1
    model = Timed(seed=5, fail_turn=failing)
    with pytest.raises(RuntimeError, match=f"turn {failing} failed"):
        _write_code(tmp_path / "ws", 8, model, record=tmp_path / "t.jsonl")
    recorded = {c.turn for c in Transcript.load(tmp_path / "t.jsonl").calls}
    # Its siblings (the calls started before it failed) all finished, and their answers were
    # kept: the files are written and the transcript holds them for a resumed run.
    siblings = {t for t, (start, _) in model.spans.items() if t != failing and start < model.spans[failing][1]}
    assert siblings and recorded == siblings
    for turn in siblings:
        assert (tmp_path / "ws" / order[turn - 1]).is_file()
    # Nothing that needed fines.py was started.
    loans = order.index("lending_library/loans.py") + 1
    assert loans not in model.spans


def _two_failures(tmp_path: Path) -> str:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    (tmp_path / "pkg/a.py").write_text("def f():\n    return 1\n")
    (tmp_path / "pkg/b.py").write_text("def g():\n    return 2\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("from pkg.a import f\n\ndef test_one():\n    assert f() == 2\n")
    (tmp_path / "tests/test_b.py").write_text("from pkg.b import g\n\ndef test_two():\n    assert g() == 3\n")
    return """..F.F                                                                    [100%]
=================================== FAILURES ===================================
___________________________________ test_one ___________________________________

    def test_one():
>       assert f() == 2
E       assert 1 == 2

tests/test_a.py:4: AssertionError
___________________________________ test_two ___________________________________

    def test_two():
>       assert g() == 3
E       assert 2 == 3

tests/test_b.py:4: AssertionError
=========================== short test summary info ============================
FAILED tests/test_a.py::test_one - assert 1 == 2
FAILED tests/test_b.py::test_two - assert 2 == 3
2 failed, 3 passed
"""


def test_failures_in_files_that_share_nothing_are_fixed_apart(tmp_path):
    from mgpt.sandbox.workspace import Workspace

    output = _two_failures(tmp_path)
    groups = failure_groups(Workspace(tmp_path), output)
    assert [(tests, files) for tests, _, files in groups] == [
        (["tests/test_a.py"], ["pkg/a.py", "tests/test_a.py"]),
        (["tests/test_b.py"], ["pkg/b.py", "tests/test_b.py"]),
    ]
    assert "test_one" in groups[0][1] and "test_two" not in groups[0][1] and "2 failed, 3 passed" in groups[0][1]
    # When both tests import the same module, their fixes could collide: one group.
    (tmp_path / "tests/test_b.py").write_text("from pkg.a import f\nfrom pkg.b import g\n\ndef test_two():\n    assert g() == 3\n")
    [(tests, text, files)] = failure_groups(Workspace(tmp_path), output)
    assert tests == [] and text == output and files == ["pkg/a.py", "pkg/b.py", "tests/test_a.py", "tests/test_b.py"]


def test_independent_fixes_run_at_once_and_their_re_asks_are_keyed_in_rounds(tmp_path):
    output = _two_failures(tmp_path)
    fix_a = "pkg/a.py\n```python\ndef f():\n    return 2\n```"
    fix_b = "pkg/b.py\n```python\ndef g():\n    return 3\n```"
    # b's first reply has no file in it: it is asked again, at turn 3, after both first tries.
    model = TestModel({("Engineer", "FixBug"): [fix_a, "I would change g.", fix_b]})
    report = TestReport(passed=3, failed=2, errors=0, exit_code=1, output=output)
    ctx = ActionContext(role_name="Engineer", news=[Message(content="r", payload=report, cause_by=RunTests)],
                        workspace=tmp_path, settings={"parallel": 4})
    bundle: CodeBundle = asyncio.run(FixBug().bind(LLM(model, role="Engineer")).run(ctx))
    assert bundle.files == ["pkg/a.py", "pkg/b.py"]
    assert (tmp_path / "pkg/a.py").read_text().endswith("return 2\n") and "return 3" in (tmp_path / "pkg/b.py").read_text()
    turns = [(c.turn, m[-1].content) for c, m in model.requests]
    assert [t for t, _ in turns] == [1, 2, 3]
    first, second, again = (text for _, text in turns)
    assert "tests/test_a.py" in first and "tests/test_b.py" not in first.split("Fix the failures")[0]
    assert "Fix the failures in tests/test_b.py" in second
    assert again.startswith("That reply could not be used")


def test_a_run_that_must_not_split_fixes_makes_one_call(tmp_path):
    """A transcript recorded before fixes were split holds one FixBug call per round:
    replaying it (split_fixes False) asks for exactly that one call, with every failure."""
    output = _two_failures(tmp_path)
    both = "pkg/a.py\n```python\ndef f():\n    return 2\n```\npkg/b.py\n```python\ndef g():\n    return 3\n```"
    model = TestModel({("Engineer", "FixBug"): [both]})
    report = TestReport(passed=3, failed=2, errors=0, exit_code=1, output=output)
    ctx = ActionContext(role_name="Engineer", news=[Message(content="r", payload=report, cause_by=RunTests)],
                        workspace=tmp_path, settings={"parallel": 4, "split_fixes": False})
    bundle: CodeBundle = asyncio.run(FixBug().bind(LLM(model, role="Engineer")).run(ctx))
    assert bundle.files == ["pkg/a.py", "pkg/b.py"]
    [(call, messages)] = model.requests
    assert call.turn == 1 and "test_one" in messages[-1].content and "test_two" in messages[-1].content
    assert "Fix the failures in" not in messages[-1].content


def test_split_fixes_follows_the_transcript_being_replayed_or_resumed(tmp_path):
    from types import SimpleNamespace

    from mgpt.llm.backends.replay import Transcript, TranscriptHeader
    from mgpt.workflows.software_company import split_fixes

    old = Transcript(header=TranscriptHeader(idea="x", meta={"mgpt": "0.1.0"}))
    new = Transcript(header=TranscriptHeader(idea="x", meta={"split_fixes": True}))
    assert split_fixes(SimpleNamespace(previous=None, base=object())) is True  # a fresh run
    assert split_fixes(SimpleNamespace(previous=None, base=SimpleNamespace(transcript=old))) is False
    assert split_fixes(SimpleNamespace(previous=None, base=SimpleNamespace(transcript=new))) is True
    assert split_fixes(SimpleNamespace(previous=old, base=object())) is False  # resuming an old run


def test_a_group_without_a_valid_fix_keeps_the_others_fix(tmp_path):
    output = _two_failures(tmp_path)
    fix_a = "pkg/a.py\n```python\ndef f():\n    return 2\n```"
    model = TestModel({("Engineer", "FixBug"): [fix_a, "no", "no", "no"]})
    report = TestReport(passed=3, failed=2, errors=0, exit_code=1, output=output)
    ctx = ActionContext(role_name="Engineer", news=[Message(content="r", payload=report, cause_by=RunTests)],
                        workspace=tmp_path, settings={"parallel": 2})
    with pytest.raises(ActionError, match="no valid files after 3 attempts"):
        asyncio.run(FixBug().bind(LLM(model, role="Engineer")).run(ctx))
    assert (tmp_path / "pkg/a.py").read_text().endswith("return 2\n")  # kept: a resumed run replays it


def test_concurrent_calls_never_overshoot_the_budget():
    """Each call holds its worst case while in flight: with room for three worst cases,
    three calls run together and the fourth is refused before it is made."""
    in_flight = []

    class Capped(FunctionModel):
        max_tokens = 100  # the completion cap: each call's worst case includes it

    async def answer(messages, context):
        in_flight.append(context.turn)
        await asyncio.sleep(0.05)
        return Completion(text="ok", usage=Usage(prompt_tokens=10, completion_tokens=100))

    llm = LLM(Capped(answer, name="openai:gpt-4o-mini"), role="R", budget=Budget(max_tokens=3 * 120))
    turns = llm.reserve_turns("Act", 6)

    async def ask(job: Launch[int]):
        return await llm.ask("x" * 30, action="Act", turn=turns[job.key])

    with pytest.raises(BudgetExceeded):
        asyncio.run(run_all(range(6), ask, limit=6))
    spent = llm.budget.total
    assert in_flight == turns[:3] and spent.calls == 3
    assert spent.total_tokens <= llm.budget.max_tokens
    llm.budget.check(tokens=llm.budget.max_tokens - spent.total_tokens)  # no hold is left open
