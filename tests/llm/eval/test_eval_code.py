"""``mgpt eval code``: the pass@k estimator, sampling and sandboxed checks, hostile
candidates, and the command end to end against an OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

import json
import re
from itertools import combinations

import pytest
from typer.testing import CliRunner

from mgpt.llm.eval.code import CheckResult, pass_at_k, score_answers
from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.backends.testing import FunctionModel
from mgpt.llm.eval.code_sandbox import run_code_eval, sandbox_check
from testpaths import ROOT

TASKS = {t.id: t for t in load_tasks("all")}


def _task_of(messages) -> str:
    text = messages[-1].content if hasattr(messages[-1], "content") else messages[-1]["content"]
    return re.search(r"Write the file `(\w+)\.py`", text).group(1)


def _fenced(code: str) -> str:
    return f"Here it is.\n```python\n{code}```\n"


@pytest.mark.parametrize("n, c, k", [(5, 0, 1), (5, 5, 3), (10, 3, 1), (10, 3, 5), (4, 1, 2), (20, 7, 10)])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k):
    # Brute force: the share of k-subsets of the n samples holding at least one correct one.
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="at least 3 samples"):
        pass_at_k(2, 1, 3)


@pytest.mark.slow
def test_reference_and_wrong_answers_scored_in_the_sandbox(tmp_path):
    """n=2 per task: the first sample is the reference, the second the wrong solution
    (except one task, answered with prose only), so pass@1 = 0.5 and pass@2 = 1 exactly."""
    ids = ["reverse_words", "is_leap_year", "cli_greet"]

    def answer(messages, context):
        task = TASKS[_task_of(messages)]
        if task.id == "cli_greet":
            return "I would write a greeting program."  # no code at all: extract_code gives the prose
        return _fenced(task.reference if context.turn == 1 else task.wrong)

    out = tmp_path / "r.json"
    # Three tasks only: whole families would take a minute of sandbox runs.
    result = run_code_eval(FunctionModel(answer), tasks=[TASKS[i] for i in ids], split="all", n=2, ks=[1, 2],
                           json_out=out, timeout=30)
    by_id = {t.id: t for t in result.tasks}
    assert by_id["reverse_words"].correct == 1 and by_id["is_leap_year"].correct == 1
    assert by_id["cli_greet"].correct == 0
    assert result.pass_at["pass@1"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert result.pass_at["pass@2"] == pytest.approx(2 / 3)
    data = json.loads(out.read_text())
    assert data["pass@1"] == pytest.approx(1 / 3) and data["tasks_evaluated"] == 3
    assert data["by_family"]["dates"]["pass@2"] == 1.0
    sample = data["tasks"][0]["samples"][1]
    assert sample["passed"] is False and sample["tests_failed"] >= 1


def test_score_answers_scores_sampled_answers_as_evaluate_code_does():
    """Answers sampled elsewhere (a batched sampler), checked a few at a time: the same
    pass@k, per-family figures and no-code failures as the sampling loop gives."""
    from mgpt.llm.parsing import extract_code

    tasks = [TASKS["reverse_words"], TASKS["is_leap_year"]]
    passing = {t.id: t.reference for t in tasks}
    check = lambda t, code: CheckResult(passed=code.strip() == passing[t.id].strip(), tests_passed=1)  # noqa: E731
    answers = [[_fenced(tasks[0].reference), _fenced(tasks[0].wrong), ""],
               [_fenced(tasks[1].wrong)] * 3]
    result = score_answers(tasks, answers, check=check, extract=extract_code, ks=[1, 3], workers=2)
    assert [(t.id, t.n, t.correct) for t in result.tasks] == [("reverse_words", 3, 1), ("is_leap_year", 3, 0)]
    assert result.pass_at == {"pass@1": pytest.approx(1 / 6), "pass@3": pytest.approx(0.5)}
    assert result.by_family[tasks[1].family]["pass@1"] == 0.0
    assert result.tasks[0].samples[2].error.startswith("no code") and result.tasks[0].samples[1].error == ""
    from mgpt.llm.eval.errors import EvalInputError

    with pytest.raises(EvalInputError, match="same number of answers"):
        score_answers(tasks, [answers[0], answers[1][:2]], check=check, extract=extract_code)
    with pytest.raises(EvalInputError, match="pass@k needs"):
        score_answers(tasks, answers, check=check, extract=extract_code, ks=[4])


def test_hostile_candidates_fail_without_harm(tmp_path, monkeypatch):
    task = TASKS["reverse_words"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hostile-test-secret-123456")
    spin = sandbox_check(task, "while True:\n    pass\n", timeout=2)
    assert not spin.passed and spin.timed_out
    # A candidate that "passes" by leaking the environment: the key is not there to leak.
    leak = "import os\nprint(sorted(os.environ))\nraise SystemExit(os.environ.get('OPENAI_API_KEY', 'none'))\n"
    r = sandbox_check(task, leak, timeout=20)
    assert not r.passed and "sk-hostile" not in r.output
    # A candidate that exits 0 at import time does not count as passing.
    r = sandbox_check(task, "import os\nos._exit(0)\n", timeout=20)
    assert not r.passed


def _cli():
    from mgpt.cli import app

    return app


@pytest.mark.slow
def test_eval_code_command_against_an_openai_compatible_server(tmp_path):
    from openai_stub import OpenAIStub

    def reply(body):
        task = TASKS[_task_of(body["messages"])]
        return _fenced(task.reference if task.id in right else task.wrong)

    first4 = [t.id for t in load_tasks("test", ["recursion"])[:4]]
    right = set(first4[::2])  # the first and third answered right, the others wrong

    out = tmp_path / "eval" / "code.json"
    with OpenAIStub(default=reply) as stub:
        result = CliRunner().invoke(_cli(), [
            "eval", "code", "--model", "openai:stub-model", "--base-url", stub.base_url, "--family", "recursion",
            "--limit", "4", "--temperature", "0.7", "--json", str(out)], env={"MGPT_API_KEY": "sk-test-key-123456"})
        assert result.exit_code == 0, result.output
        assert {r.json["temperature"] for r in stub.chat_requests} == {0.7}
        assert len(stub.chat_requests) == 4
        assert "Write the file" in stub.chat_requests[0].json["messages"][1]["content"]
    data = json.loads(out.read_text())
    assert [t["id"] for t in data["tasks"]] == first4
    assert [t["correct"] for t in data["tasks"]] == [1, 0, 1, 0]
    assert data["pass@1"] == 0.5 and data["n"] == 1 and data["temperature"] == 0.7
    assert "pass@1" in result.stdout and "0.500" in result.stdout and "recursion" in result.stdout


@pytest.mark.slow
def test_eval_code_on_a_local_checkpoint(tmp_path):
    """hf: plumbing: a random tiny model writes gibberish, so pass@1 is 0, but every step runs."""
    pytest.importorskip("transformers")
    from mgpt.llm.local.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny", chat_template=True, n_positions=512)
    out = tmp_path / "hf.json"
    r = CliRunner().invoke(_cli(), ["eval", "code", "--model", f"hf:{ckpt}", "--limit", "1", "--max-tokens", "8",
                                    "-n", "2", "--temperature", "1.0", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["pass@1"] == 0.0 and data["pass@2"] == 0.0 and data["temperature"] == 1.0
    assert data["completion_tokens"] > 0 and len(data["tasks"][0]["samples"]) == 2


def test_eval_code_bad_input_exits_2(tmp_path):
    runner = CliRunner()
    r = runner.invoke(_cli(), ["eval", "code", "--model", "test", "-n", "1", "--k", "3", "--json", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "pass@3 needs 1 <= k <= n" in r.output
    r = runner.invoke(_cli(), ["eval", "code", "--model", "test", "--split", "dev", "--json", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "unknown split" in r.output
    r = runner.invoke(_cli(), ["eval", "code", "--model", "nonsense:x", "--json", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "unknown model spec" in r.output
    assert not (tmp_path / "x.json").exists()


def test_llm_layer_does_not_import_actions_or_workflows():
    for path in (ROOT / "llm").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(mgpt\.)?(actions|workflows|roles)\b", text, re.M), path
        assert "from ...actions" not in text and "from ...workflows" not in text, path
