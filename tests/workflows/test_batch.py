"""mgpt batch's library side: reading the ideas, making the runs' tasks, and a real run
(replayed) whose worker is killed mid-run continuing its transcript."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from mgpt.agents.runner import BatchError, RunnerOptions
from mgpt.llm.backends.replay import Transcript
from mgpt.workflows.batch import BatchItem, BatchSettings, load_ideas, make_tasks, run_batch
from testpaths import GOLDEN


def test_ideas_come_one_a_line_or_as_json_records(tmp_path):
    text = tmp_path / "ideas.txt"
    text.write_text("# my ideas\na todo app\n\n  a word counter  \n")
    assert [i.idea for i in load_ideas(text)] == ["a todo app", "a word counter"]
    records = tmp_path / "ideas.jsonl"
    replay = GOLDEN / "todo_cli.jsonl"
    records.write_text(json.dumps({"idea": "a calculator", "options": {"fix_rounds": 1}}) + "\n"
                       + json.dumps({"model": f"replay:{replay}"}) + "\n")
    first, second = load_ideas(records)
    assert first == BatchItem(idea="a calculator", options={"fix_rounds": 1})
    assert second.idea is None and second.model == f"replay:{replay}"


@pytest.mark.parametrize("line, message", [
    ("{not json", "ideas.jsonl:2: not a JSON record"),
    ('{"idea": "x", "colour": 1}', "unknown field"),
    ('{"model": "openai:gpt-4o-mini"}', "no idea"),
    ('{"idea": "x", "options": [1]}', "options must be an object"),
    ('{"idea": ""}', "non-empty"),
])
def test_bad_records_are_refused_with_their_line(tmp_path, line, message):
    path = tmp_path / "ideas.jsonl"
    path.write_text('{"idea": "fine"}\n' + line + "\n")
    with pytest.raises(BatchError, match=message):
        load_ideas(path)


def test_an_empty_or_missing_ideas_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(BatchError, match="holds no ideas"):
        load_ideas(tmp_path / "empty.txt")
    with pytest.raises(BatchError, match="cannot read"):
        load_ideas(tmp_path / "missing.txt")


def test_each_run_becomes_a_task_with_its_folder_model_and_options(tmp_path, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    items = [BatchItem(idea="Build a TODO app!"), BatchItem(idea=None, model="replay:todo_cli.jsonl",
                                                           options={"max_rounds": 5})]
    tasks = make_tasks(items, BatchSettings(model="openai:gpt-4o-mini", options={"fix_rounds": 1}))
    assert [t.id for t in tasks] == ["001-build-a-todo-app", "002-build-a-todo-app-a-command-line-todo-lis"]
    assert tasks[0].args["model"] == "openai:gpt-4o-mini" and tasks[0].args["options"] == {"fix_rounds": 1}
    assert tasks[1].args["model"] == f"replay:{GOLDEN / 'todo_cli.jsonl'}"  # absolute: workers run elsewhere
    assert tasks[1].args["idea"] == Transcript.load(GOLDEN / "todo_cli.jsonl").header.idea
    assert tasks[1].args["options"] == {"fix_rounds": 1, "max_rounds": 5}
    assert "api_key" not in json.dumps([t.args for t in tasks]).replace("api_key_file", "")
    with pytest.raises(BatchError, match="has no model"):
        make_tasks([BatchItem(idea="x")], BatchSettings())
    with pytest.raises(BatchError, match="colour is not an option"):
        make_tasks([BatchItem(idea="x", options={"colour": "red"})], BatchSettings(model="test"))


def _project(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in (".mgpt", ".git")}


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_continues_its_transcript(tmp_path):
    """kill -9 of the worker after three model calls: the retry answers them from the
    run's transcript (not made again) and writes the same project as an unbroken run."""
    items = [BatchItem(idea=None, model=f"replay:{GOLDEN / 'bank_ledger_bug.jsonl'}")]
    clean = run_batch(items, BatchSettings(), RunnerOptions(out=tmp_path / "clean"))
    out = tmp_path / "killed"
    killed = []

    def kill_after_three_calls(task: str, pid: int) -> None:
        transcript = out / task / ".mgpt" / "transcript.jsonl"
        while not transcript.is_file() or transcript.read_text().count('"type":"call"') < 3:
            threading.Event().wait(0.05)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def on_update(update) -> None:
        if update.status == "running" and update.attempt == 1:
            pid = int(update.worker.rsplit("pid ", 1)[1])
            threading.Thread(target=kill_after_three_calls, args=(update.id, pid), daemon=True).start()

    result = run_batch(items, BatchSettings(), RunnerOptions(out=out, on_update=on_update))
    (run,) = result.outcomes
    assert killed and run.ok and run.attempts == 2
    assert run.result["replayed_calls"] >= 3 and run.result["replayed_calls"] + run.result["new_calls"] \
        == clean.outcomes[0].result["new_calls"]
    assert _project(run.workdir) == _project(clean.outcomes[0].workdir)
    assert run.result["tests"] == clean.outcomes[0].result["tests"]
    assert result.spend.cost == pytest.approx(clean.spend.cost)  # the replayed calls were not charged twice
