"""Resume: a run killed anywhere continues to the same project without repeating a model call.

The kill test SIGKILLs ``mgpt run --replay bank_ledger_bug.jsonl`` (a run with a fix round)
at many exact durable writes — before the write, and part-way through it so the file ends
in a torn line — and at a few wall-clock times, then resumes it with the same replay as the
"real" model. Every resumed run must end with byte-identical project files and git history
subjects, and the real model must be asked exactly the calls the killed run had not
recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mgpt.agents.durable import append_line, complete_lines, repair_tail
from mgpt.agents.runlog import read_log
from mgpt.llm.backends.replay import Transcript
from mgpt.workflows.history import git_available
from testpaths import GOLDEN

LEDGER = GOLDEN / "bank_ledger_bug.jsonl"
CALLS = 11  # model calls in the golden run

needs_git = pytest.mark.skipif(not git_available(), reason="git is not installed")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGPT_CRASH")}
    env.update(extra)
    return env


def _mgpt(ws: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgpt", "run", "--replay", str(LEDGER), "-w", str(ws), *args],
        capture_output=True, text=True, env=env or _env(), timeout=timeout,
    )


def _project(ws: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(ws.rglob("*")):
        rel = path.relative_to(ws)
        if rel.parts[0] in (".mgpt", ".git") or not path.is_file():
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


def _subjects(ws: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(ws), "log", "--reverse", "--format=%an|%s"],
                         capture_output=True, text=True, check=True).stdout
    # "Start run" commits are dated, and a run killed before its first record starts over.
    return [line for line in out.splitlines() if "|Start run: " not in line]


def _resume_counts(output: str) -> tuple[int, int]:
    line = next(l for l in output.splitlines() if l.startswith("resume:"))
    words = line.split()
    return int(words[1]), int(words[words.index("made") - 1].rstrip(","))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ref") / "ws"
    proc = _mgpt(ws)
    assert proc.returncode == 0, proc.stderr
    return ws, _project(ws), (_subjects(ws) if git_available() else None), _total_writes(ws)


def _total_writes(ws: Path) -> int:
    """Durable writes of a whole run: every transcript and run-log line."""
    return sum(len(p.read_text().splitlines()) for p in (ws / ".mgpt/transcript.jsonl", ws / ".mgpt/run.jsonl"))


def _check_resumed(ws: Path, reference, killed_calls: int, label: str) -> None:
    _, files, subjects, _ = reference
    proc = _mgpt(ws, "--resume")
    assert proc.returncode == 0, f"{label}: {proc.stdout}\n{proc.stderr}"
    if killed_calls >= 0:
        replayed, made = _resume_counts(proc.stderr)
        # Zero model calls for the steps that were done; exactly the rest are made.
        assert (replayed, made) == (killed_calls, CALLS - killed_calls), label
    assert _project(ws) == files, f"{label}: the project differs from an uninterrupted run"
    transcript = Transcript.load(ws / ".mgpt/transcript.jsonl", resuming=True)
    keys = [(c.role, c.action, c.turn) for c in transcript.calls]
    assert len(keys) == CALLS == len(set(keys)), f"{label}: {keys}"
    assert transcript.end is not None and transcript.end.tests_passed
    assert transcript.torn_bytes == 0
    list(read_log(ws / ".mgpt/run.jsonl"))  # every line parses: a torn line was cut, not glued
    if subjects is not None:
        assert _subjects(ws) == subjects, label
        assert "history:" not in proc.stderr, f"{label}: {proc.stderr}"


def _calls_on_disk(ws: Path) -> int:
    path = ws / ".mgpt/transcript.jsonl"
    if not path.is_file():
        return 0
    lines, _ = complete_lines(path.read_text())
    return sum(1 for line in lines if json.loads(line).get("type") == "call")


@pytest.mark.slow
def test_kill_anywhere_then_resume(reference, tmp_path):
    total = reference[3]
    # Exact points: every sixth durable write killed before it is written, and every
    # eighth (offset) killed part-way through, leaving a torn line.
    points = [(n, None) for n in range(1, total + 1, 6)] + [(n, 37) for n in range(3, total + 1, 8)]
    tried = 0
    for n, torn in points:
        ws = tmp_path / f"ws-{n}-{torn}"
        extra = {"MGPT_CRASH_AT_WRITE": str(n)}
        if torn is not None:
            extra["MGPT_CRASH_TORN_BYTES"] = str(torn)
        proc = _mgpt(ws, env=_env(**extra))
        assert proc.returncode == -signal.SIGKILL, (n, torn, proc.stderr)
        if torn is not None and n > 1:
            tails = [complete_lines(p.read_text())[1] for p in (ws / ".mgpt").glob("*.jsonl")]
            assert any(tails), "the kill must leave a torn line"
        _check_resumed(ws, reference, _calls_on_disk(ws), f"write {n} torn {torn}")
        tried += 1
    # Wall-clock kills land anywhere, inside file writes and git commands included.
    for delay in (0.05, 0.5, 1.0):
        ws = tmp_path / f"ws-t{delay}"
        child = subprocess.Popen(
            [sys.executable, "-m", "mgpt", "run", "--replay", str(LEDGER), "-w", str(ws)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
        )
        # Counted from the run's start (its transcript appearing), not the interpreter's.
        deadline = time.monotonic() + 60
        while not (ws / ".mgpt/transcript.jsonl").exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        if not (ws / ".mgpt/transcript.jsonl").is_file():
            continue  # killed before it began: nothing to resume
        finished = Transcript.load(ws / ".mgpt/transcript.jsonl", resuming=True).end is not None
        _check_resumed(ws, reference, -1 if finished else _calls_on_disk(ws), f"after {delay} s")
        tried += 1
    print(f"kill points tried: {tried} ({len(points)} exact of {total} durable writes, {tried - len(points)} timed)")
    assert tried >= 20


@pytest.mark.slow
def test_resume_twice_and_resume_finished(reference, tmp_path):
    ws = tmp_path / "ws"
    assert _mgpt(ws, env=_env(MGPT_CRASH_AT_WRITE="9")).returncode == -signal.SIGKILL
    killed = _calls_on_disk(ws)
    # Killed again while resuming: the second resume still makes only what is missing.
    assert _mgpt(ws, "--resume", env=_env(MGPT_CRASH_AT_WRITE="6")).returncode == -signal.SIGKILL
    assert _calls_on_disk(ws) >= killed
    _check_resumed(ws, reference, _calls_on_disk(ws), "second resume")
    again = _mgpt(ws, "--resume")
    assert again.returncode == 0
    assert "already finished" in again.stderr and "resume:" not in again.stderr


@pytest.mark.slow
def test_resume_refuses_another_model_or_idea_unless_forced(tmp_path):
    ws = tmp_path / "ws"
    assert _mgpt(ws, env=_env(MGPT_CRASH_AT_WRITE="12")).returncode == -signal.SIGKILL
    other = GOLDEN / "todo_cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mgpt", "run", "--resume", "--replay", str(other), "-w", str(ws)],
                          capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "used model 'replay:bank_ledger_bug.jsonl'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = _mgpt(ws, "--resume", "a different idea")
    assert proc.returncode == 2 and "another idea" in proc.stderr
    nothing = _mgpt(tmp_path / "empty", "--resume")
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr
    forced = _mgpt(ws, "--resume", "--force", "a bank ledger, but forced")
    assert forced.returncode == 0, forced.stderr
    assert "idea changed from" in forced.stderr and "(forced)" in forced.stderr


def test_durable_append_and_torn_tail(tmp_path):
    path = tmp_path / "log.jsonl"
    with path.open("ab") as f:
        append_line(f, '{"a": 1}')
        f.write(b'{"b": 2')  # a line torn by a kill
    assert complete_lines(path.read_text()) == (['{"a": 1}'], '{"b": 2')
    assert repair_tail(path) == len('{"b": 2')
    assert path.read_text() == '{"a": 1}\n'
    assert repair_tail(path) == 0
    path.write_text('{"c": 3}')  # nothing whole at all
    assert repair_tail(path) == len('{"c": 3}') and path.read_text() == ""


def test_a_torn_call_record_is_never_replayed(tmp_path):
    lines = LEDGER.read_text().splitlines()
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    resumed = Transcript.load(path, resuming=True)
    assert len(resumed.calls) == 2 and resumed.torn_bytes > 0
    # Even a torn line that happens to end exactly at its closing brace does not count.
    path.write_text("\n".join(lines[:4]))
    assert len(Transcript.load(path, resuming=True).calls) == 2
    assert len(Transcript.load(path).calls) == 3  # a hand-written file without the last newline


@needs_git
def test_git_history_tells_the_story(reference):
    ws = reference[0]
    log = subprocess.run(["git", "-C", str(ws), "log", "--reverse", "--format=%an <%ae>|%s"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log[0].startswith("mgpt <mgpt@localhost>|Start run: a bank account ledger")
    assert [line.split(" <")[0] + "|" + line.split("|")[1] for line in log[1:]] == [
        "ProductManager|WritePRD: the product requirements",
        "Architect|WriteDesign: the system design",
        "ProjectManager|WriteTasks: the task list",
        "Engineer|WriteCode: the code",
        "QaEngineer|WriteTests: the tests",
        "Engineer|FixBug: fix round 1",
        "QaEngineer|RunTests: the QA report",
        "mgpt|README: how to run and test the project",
    ]
    fix = subprocess.run(["git", "-C", str(ws), "log", "-1", "--format=%H", "--grep", "FixBug"],
                         capture_output=True, text=True, check=True).stdout.strip()
    diff = subprocess.run(["git", "-C", str(ws), "show", "--format=", "--stat", fix],
                          capture_output=True, text=True, check=True).stdout
    assert "bank_ledger/ledger.py" in diff and "1 file changed" in diff
    patch = subprocess.run(["git", "-C", str(ws), "show", "--format=", fix],
                           capture_output=True, text=True, check=True).stdout
    golden_fix = next(json.loads(l) for l in LEDGER.read_text().splitlines() if '"action":"FixBug"' in l)
    added = [l[1:] for l in patch.splitlines() if l.startswith("+") and not l.startswith("+++")]
    assert added and all(l in golden_fix["response"]["text"] for l in added)
    # mgpt's own records stay out of the project's history; the tree is clean.
    tracked = subprocess.run(["git", "-C", str(ws), "ls-files"], capture_output=True, text=True).stdout
    assert ".mgpt" not in tracked
    assert subprocess.run(["git", "-C", str(ws), "status", "--porcelain"],
                          capture_output=True, text=True).stdout == ""


def test_a_run_stopped_by_its_budget_resumes_with_a_bigger_one(reference, tmp_path):
    ws = tmp_path / "ws"
    stopped = _mgpt(ws, "--max-tokens", "1000")
    assert stopped.returncode == 3, stopped.stderr
    done = _calls_on_disk(ws)
    assert 0 < done < CALLS
    # Replayed calls count as spent: the same budget stops at the same place, untouched.
    same = _mgpt(ws, "--resume", "--max-tokens", "1000")
    assert same.returncode == 3 and _resume_counts(same.stderr) == (done, 0)
    more = _mgpt(ws, "--resume", "--max-tokens", "100000")
    assert more.returncode == 0, more.stderr
    assert _resume_counts(more.stderr) == (done, CALLS - done)
    assert _project(ws) == reference[1] and "history:" not in more.stderr


def test_a_failed_run_resumes_without_git(reference, tmp_path, monkeypatch):
    """A dead network fails the run mid-step; with git missing, resume still rebuilds the
    same project (the workspace is cleaned from the run's baseline instead)."""
    import asyncio

    import mgpt.workflows.software_company as company
    from mgpt.llm.errors import ModelUnavailableError
    from mgpt.llm.backends.replay import ReplayModel
    from mgpt.llm.backends.testing import FunctionModel

    import mgpt.workflows.harness as harness

    monkeypatch.setattr(harness, "git_available", lambda: False)
    golden = ReplayModel(LEDGER)
    asked: list = []

    async def flaky(messages, context):
        asked.append((context.role, context.action, context.turn))
        if (context.role, context.action, context.turn) == ("Engineer", "WriteCode", 3):
            raise ModelUnavailableError("the network went away")
        return await golden.complete(messages, context=context)

    ws = tmp_path / "ws"
    (ws / "notes").mkdir(parents=True)
    (ws / "notes/mine.txt").write_text("the user's own file\n")
    idea = Transcript.load(LEDGER).header.idea
    with pytest.raises(ModelUnavailableError):
        asyncio.run(company.run_company(idea, model=FunctionModel(flaky, name=golden.name), workspace=ws, force=True))
    assert not (ws / ".git").exists()
    (ws / "bank_ledger/stray.py").write_text("left by the failed run\n")
    asked.clear()
    result = asyncio.run(company.run_company(None, model=ReplayModel(LEDGER), workspace=ws, resume=True))
    # __init__.py (turn 3) and __main__.py (turn 4) were written together: the failing call
    # cancelled nothing, so __main__.py's answer was recorded and is replayed, not asked again.
    assert result.tests_passed and (result.replayed_calls, result.new_calls) == (6, 5)
    assert "no version history: git is not installed" in result.notes
    files = _project(ws)
    assert files.pop("notes/mine.txt") == b"the user's own file\n"  # the baseline is kept
    assert files == reference[1]


def test_resume_model_answers_by_key_in_any_order_and_passes_the_rest_on():
    import asyncio

    from mgpt.llm.backends.base import CallContext, ChatMessage, Completion
    from mgpt.llm.backends.replay import CallRecord, ResumeModel
    from mgpt.llm.backends.testing import FunctionModel

    def record(role, turn, text):
        return CallRecord(role=role, action="Act", turn=turn,
                          request=[ChatMessage(role="user", content=f"{role} {turn}")],
                          response=Completion(text=text))

    real: list = []
    inner = FunctionModel(lambda m, c: real.append((c.role, c.turn)) or f"new {c.role} {c.turn}", name="m")
    model = ResumeModel(inner, [record("A", 1, "a1"), record("B", 1, "b1"), record("A", 2, "a2")])

    async def ask(role, turn):
        ctx = CallContext(role=role, action="Act", turn=turn)
        return (await model.complete([ChatMessage(role="user", content=f"{role} {turn}")], context=ctx)).text

    async def main():
        # B reaches the model before A this time; each still gets its own recorded answer.
        return await asyncio.gather(ask("B", 1), ask("A", 1), ask("B", 2), ask("A", 2), ask("A", 3))

    assert asyncio.run(main()) == ["b1", "a1", "new B 2", "a2", "new A 3"]
    assert real == [("B", 2), ("A", 3)]
    assert sorted(model.replayed) == [("A", "Act", 1), ("A", "Act", 2), ("B", "Act", 1)]
    assert model.made == [("B", "Act", 2), ("A", "Act", 3)]
