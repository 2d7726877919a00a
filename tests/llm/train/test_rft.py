"""Rejection-sampling fine-tuning: a scripted sampler, the real sandbox check on bank tasks,
only passing answers kept (deduplicated), and the fine-tune lowering the loss on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.llm.eval.code import CheckResult
from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.train.config import load_config
from mgpt.llm.train.errors import TrainError

TASKS = {t.id: t for t in load_tasks("all")}
IDS = ["reverse_words", "is_leap_year"]


def fenced(code: str) -> str:
    return f"Here it is.\n```python\n{code}```\n"


def scripted(task_of_messages):
    """Per task: the reference, the wrong solution, the reference again (a duplicate)."""

    def sample(model, tokenizer, messages, k):
        t = task_of_messages(messages)
        return [fenced(t.reference), fenced(t.wrong), fenced(t.reference)][:k]

    return sample


def task_of(messages):
    return next(t for t in TASKS.values() if t.prompt == messages[-1]["content"])


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    from mgpt.llm.train.pretrain import pretrain

    tmp = tmp_path_factory.mktemp("rft_base")
    # The char tokenizer learns every character the prompts and answers use.
    text = "".join(TASKS[i].prompt + TASKS[i].reference + TASKS[i].wrong for i in IDS) + "Here it is.`\n"
    (tmp / "corpus.txt").write_text(text * 3 + "You are Engineer, a software engineer. Your goal: correct, "
                                    "readable, tested Python.\n")
    cfg = load_config(None, {
        "data.path": str(tmp / "corpus.txt"), "out_dir": str(tmp / "base"), "device": "cpu", "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "block_size": 96, "batch_size": 4,
        "max_iters": 4, "eval_interval": 4, "eval_iters": 1})
    pretrain(cfg, progress=False)
    return tmp / "base"


def rft_config(tmp_path: Path, base: Path, **over):
    cfg = {"init_from": str(base), "out_dir": str(tmp_path / "rft"), "device": "cpu", "threads": 1,
           "block_size": 96, "batch_size": 4, "eval_iters": 2, "log_interval": 5, "data.keep": "end",
           "optim.weight_decay": 0.0, "reinforce.k": 3, "reinforce.steps": 12, "reinforce.lr": 1e-2}
    cfg.update(over)
    return load_config(None, cfg)


@pytest.mark.slow
def test_rft_keeps_only_passing_answers_and_lowers_loss_on_them(tmp_path, base_model):
    from mgpt.llm.parsing import extract_code
    from mgpt.llm.train.rft import rft
    from mgpt.llm.eval.code_sandbox import sandbox_check

    tasks = [TASKS[i] for i in IDS]
    cfg = rft_config(tmp_path, base_model, **{"reinforce.iterations": 2})
    result = rft(cfg, tasks, check=sandbox_check, extract=extract_code, sample=scripted(task_of), progress=False)

    assert len(result.iterations) == 2
    for it in result.iterations:
        it_dir = tmp_path / "rft" / f"iter_{it.iteration}"
        samples = [json.loads(x) for x in (it_dir / "samples.jsonl").read_text().splitlines()]
        # The sandbox passes the references and fails the wrong solutions.
        assert [s["passed"] for s in samples] == [True, False, True] * 2
        kept = [json.loads(x) for x in (it_dir / "train.jsonl").read_text().splitlines()]
        assert [k["task"] for k in kept] == IDS  # one per task: the duplicate reference dropped
        for k in kept:
            assert k["messages"][-1]["content"] == fenced(TASKS[k["task"]].reference)
        assert (it.samples, it.passed, it.kept, it.tasks_solved) == (6, 4, 2, 2)
        assert it.loss_after < it.loss_before
        assert (Path(it.model_dir) / "model.safetensors").is_file()
    # The second round started from the first round's model.
    assert result.model_dir == str(tmp_path / "rft" / "iter_2" / "model")
    summary = json.loads((tmp_path / "rft" / "rft.json").read_text())
    assert [i["pass_rate"] for i in summary["iterations"]] == pytest.approx([4 / 6, 4 / 6])


def test_rft_stops_when_nothing_passes(tmp_path, base_model):
    from mgpt.llm.train.rft import rft

    tasks = [TASKS[i] for i in IDS]
    result = rft(rft_config(tmp_path, base_model, **{"reinforce.iterations": 3}), tasks,
                 check=lambda t, code: CheckResult(passed=False, tests_failed=1), extract=lambda a: a,
                 sample=scripted(task_of), progress=False)
    assert len(result.iterations) == 1 and result.iterations[0].kept == 0
    assert "no sample passed" in result.stopped
    assert result.model_dir == str(base_model)
    assert not (tmp_path / "rft" / "iter_1" / "model").exists()


def test_keep_passing_dedups_by_code():
    from mgpt.llm.train.rft import Sample, keep_passing

    s = [Sample("a", "x", True, code="f()\n"), Sample("a", "y", True, code="f()"), Sample("a", "z", False, code="g()"),
         Sample("b", "x", True, code="f()")]
    assert [(k.task, k.answer) for k in keep_passing(s)] == [("a", "x"), ("b", "x")]


def test_rft_rejects_no_tasks_and_a_bad_model(tmp_path, base_model):
    from mgpt.llm.train.rft import rft

    with pytest.raises(TrainError, match="no tasks"):
        rft(rft_config(tmp_path, base_model), [], check=None, extract=None)
    with pytest.raises(TrainError, match="not a model checkpoint"):
        rft(rft_config(tmp_path, tmp_path), [TASKS[IDS[0]]], check=None, extract=None)


@pytest.mark.parametrize("args, message", [
    (["rft", "tiny", "--set", "reinforce.k=0"], "reinforce.k"),
    (["dpo", "tiny", "--set", "reinforce.beta=-1"], "reinforce.beta"),
    (["grpo", "tiny", "--set", "reinforce.kl_coef=x"], "reinforce.kl_coef"),
    (["rft", "tiny", "--set", "reinforce.iteration=2"], "unknown config key 'reinforce.iteration'"),
    (["rft", "tiny"], "no model"),
    (["dpo", "tiny", "--pairs", "/nonexistent/pairs.jsonl"], "pairs file not found"),
    (["grpo", "tiny", "--model", "/nonexistent", "--set", "reinforce.k=1"], "reinforce.k >= 2"),
    (["rft", "tiny", "--model", "/nonexistent", "--set", "reinforce.families=[\"nope\"]"], "unknown task family"),
])
def test_bad_config_is_a_one_line_error(args, message):
    from mgpt.cli import app

    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert out.startswith("error:") and len(out.splitlines()) == 1 and message in out, out


def test_hf_sampler_returns_k_decoded_answers(base_model):
    import torch

    from mgpt.llm.train.rft import hf_sampler, prompt_messages
    from mgpt.llm.train.sft import load_model_folder

    torch.manual_seed(0)
    model, tok = load_model_folder(base_model)
    model.train()
    sample = hf_sampler(temperature=1.0, max_new_tokens=6)
    answers = sample(model, tok, [{"role": "user", "content": "Write it."}], 3)
    assert len(answers) == 3 and all(isinstance(a, str) and len(a) <= 6 for a in answers)
    assert model.training  # put back as it was
    with pytest.raises(TrainError, match="exceed the model's 96 positions"):
        sample(model, tok, prompt_messages(TASKS[IDS[0]]), 3)
