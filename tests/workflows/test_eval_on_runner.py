"""The evaluations on the task runner (``--workers``, ``--ray``): the same measures as one
process, each task of the bank or idea a task of the runner."""

from __future__ import annotations

import re

import pytest

from mgpt.agents.runner import RunnerOptions
from mgpt.llm.backends.replay import RecordingModel, Transcript
from mgpt.llm.backends.testing import FunctionModel
from mgpt.llm.eval.code_sandbox import run_code_eval
from mgpt.llm.eval.errors import EvalInputError
from mgpt.llm.eval.tasks import load_tasks
from mgpt.workflows.company_eval import run_company_eval
from testpaths import GOLDEN

TASKS = {t.id: t for t in load_tasks("all")}
IDS = ["reverse_words", "is_leap_year"]


def _answer(messages, context):
    task = TASKS[re.search(r"Write the file `(\w+)\.py`", messages[-1].content).group(1)]
    return f"```python\n{task.reference if context.turn == 1 else task.wrong}```\n"


@pytest.mark.slow
def test_eval_code_on_local_workers_scores_as_one_process(tmp_path):
    """A recorded sampling (reference, then wrong answer, per task) scored in one process and
    on two workers (each replaying its task's calls): the same pass@k, task by task."""
    recorded = tmp_path / "calls.jsonl"
    tasks = [TASKS[i] for i in IDS]
    one = run_code_eval(RecordingModel(FunctionModel(_answer), recorded), tasks=tasks, split="all", n=2, ks=[1, 2])
    seen = []
    many = run_code_eval(f"replay:{recorded}", tasks=tasks, split="all", n=2, ks=[1, 2],
                         on_sample=lambda task, i, sample: seen.append(task.id),
                         runner=RunnerOptions(out=tmp_path / "runs", workers=2))
    assert many.pass_at == one.pass_at == {"pass@1": 0.5, "pass@2": 1.0}
    assert [(t.id, t.correct, [s.passed for s in t.samples]) for t in many.tasks] == \
           [(t.id, t.correct, [s.passed for s in t.samples]) for t in one.tasks]
    assert sorted(seen) == sorted(IDS)
    for task_id in IDS:  # each task's calls came back as its own transcript
        calls = Transcript.load(tmp_path / "runs" / task_id / "transcript.jsonl").calls
        assert [c.action for c in calls] == [f"CodeEval:{task_id}"] * 2


def test_the_runner_needs_a_model_spec(tmp_path):
    with pytest.raises(EvalInputError, match="spec"):
        run_code_eval(FunctionModel(_answer), tasks=[TASKS["reverse_words"]], runner=RunnerOptions(out=tmp_path))
    with pytest.raises(EvalInputError, match="spec"):
        run_company_eval(lambda idea: FunctionModel(_answer), ["x"], tmp_path / "o",
                         runner=RunnerOptions(out=tmp_path / "o"))


@pytest.mark.slow
def test_eval_company_on_local_workers_measures_as_one_process(tmp_path):
    replay = GOLDEN / "todo_cli.jsonl"
    idea = Transcript.load(replay).header.idea
    one = run_company_eval(f"replay:{replay}", [idea], tmp_path / "one")
    reported = []
    many = run_company_eval(f"replay:{replay}", [idea], tmp_path / "many", on_idea=reported.append,
                            runner=RunnerOptions(out=tmp_path / "unused", workers=2))
    keep = ("idea", "tests_passed", "stop_reason", "calls", "prompt_tokens", "completion_tokens",
            "structured_asks", "structured_first_try")
    assert [{k: getattr(i, k) for k in keep} for i in many.ideas] == [{k: getattr(i, k) for k in keep} for i in one.ideas]
    assert many.tests_pass_share == 1.0 and many.first_try_parse_share == one.first_try_parse_share
    assert reported and reported[0].tests_passed and (tmp_path / "many").is_dir()


@pytest.mark.slow
def test_mgpt_eval_code_and_company_take_workers(tmp_path):
    import json

    from typer.testing import CliRunner

    from mgpt.cli import app
    from openai_stub import OpenAIStub

    first4 = [t.id for t in load_tasks("test", ["recursion"])[:4]]
    right = set(first4[::2])

    def reply(body):
        task = TASKS[re.search(r"Write the file `(\w+)\.py`", body["messages"][-1]["content"]).group(1)]
        return f"```python\n{task.reference if task.id in right else task.wrong}```\n"

    with OpenAIStub(default=reply) as stub:
        code = CliRunner().invoke(app, [
            "eval", "code", "--model", "openai:stub-model", "--base-url", stub.base_url, "--family", "recursion",
            "--limit", "4", "--json", str(tmp_path / "code.json"), "--workers", "2"],
            env={"MGPT_API_KEY": "sk-test-key-123456"})
        assert code.exit_code == 0, code.output
        assert len(stub.chat_requests) == 4
    data = json.loads((tmp_path / "code.json").read_text())
    assert [t["id"] for t in data["tasks"]] == first4 and [t["correct"] for t in data["tasks"]] == [1, 0, 1, 0]
    assert data["pass@1"] == 0.5
    replay = GOLDEN / "word_stats.jsonl"
    ideas = tmp_path / "ideas.txt"
    ideas.write_text(Transcript.load(replay).header.idea + "\n")
    company = CliRunner().invoke(app, ["eval", "company", str(ideas), "--model", f"replay:{replay}", "--out",
                                       str(tmp_path / "runs"), "--json", str(tmp_path / "company.json"),
                                       "--workers", "2"])
    assert company.exit_code == 0, company.output
    result = json.loads((tmp_path / "company.json").read_text())
    assert result["tests_pass_share"] == 1.0 and result["ideas"][0]["calls"] == 8
    assert (tmp_path / "runs" / ".mgpt-batch" / "ledger.jsonl").is_file()
