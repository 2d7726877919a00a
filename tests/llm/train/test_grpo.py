"""GRPO: group-normalised advantages, the clipped loss and its KL term, and steps that move
a tiny model toward the answers the checker rewards."""

from __future__ import annotations

import json
import math

import pytest

from mgpt.llm.eval.code import CheckResult
from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.train.config import load_config
from mgpt.llm.train.errors import TrainError


def test_advantages_are_group_normalised():
    import torch

    from mgpt.llm.train.grpo import group_advantages

    a = group_advantages(torch.tensor([1.0, 0.0, 0.25, 1.0]))
    assert a.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert a.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
    assert a[0] == a[3] and a[0] > a[2] > a[1]
    assert group_advantages(torch.tensor([0.5, 0.5, 0.5])).abs().max().item() == 0.0  # no signal, no push


def test_loss_clips_the_ratio_and_penalises_kl():
    import torch

    from mgpt.llm.train.grpo import grpo_loss

    mask = torch.ones(2, 1)
    adv = torch.tensor([1.0, -1.0])
    old = torch.zeros(2, 1)
    # ratio e^0.5 > 1.2 with A > 0: clipped to 1.2; ratio e^-0.5 < 0.8 with A < 0: clipped to 0.8.
    logp = torch.tensor([[0.5], [-0.5]], requires_grad=True)
    loss, kl = grpo_loss(logp, old, logp.detach(), mask, adv, clip=0.2, kl_coef=0.0)
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    loss.backward()
    assert logp.grad.abs().max().item() == 0.0  # clipped: no gradient
    assert kl.item() == pytest.approx(0.0)
    # The k3 KL estimate: e^(ref - logp) - (ref - logp) - 1
    logp = torch.tensor([[0.0], [0.0]])
    ref = torch.tensor([[math.log(0.5)], [0.0]])
    loss, kl = grpo_loss(logp, logp, ref, mask, torch.zeros(2), clip=0.2, kl_coef=1.0)
    expected = (0.5 - math.log(0.5) - 1) / 2
    assert loss.item() == pytest.approx(expected) and kl.item() == pytest.approx(expected)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    from mgpt.llm.train.pretrain import pretrain

    tasks = load_tasks("train")[:1]
    corpus = tasks[0].prompt + "You are Engineer, a software engineer. Your goal: correct, readable, tested Python."
    tmp = tmp_path_factory.mktemp("grpo_base")
    (tmp / "corpus.txt").write_text((corpus + " yes no\n") * 4)
    pretrain(load_config(None, {
        "data.path": str(tmp / "corpus.txt"), "out_dir": str(tmp / "base"), "device": "cpu", "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "block_size": 64, "batch_size": 4,
        "max_iters": 4, "eval_interval": 4, "eval_iters": 1}), progress=False)
    return tmp / "base"


def test_grpo_steps_move_the_policy_toward_rewarded_answers(tmp_path, base_model):
    import torch

    from mgpt.llm.train.dpo import encode_answer, pad_batch, sequence_logps
    from mgpt.llm.train.grpo import grpo
    from mgpt.llm.train.rft import prompt_messages
    from mgpt.llm.train.sft import load_model_folder

    task = load_tasks("train")[0]
    calls = []

    def sample(model, tokenizer, messages, k):
        calls.append(k)
        return ["yes", "no", "yes", "no"][:k]

    def check(t, code):
        return CheckResult(passed=code.strip() == "yes", tests_passed=int(code.strip() == "yes"), tests_failed=1)

    def preference(model_dir):
        model, tok = load_model_folder(model_dir)
        msgs = prompt_messages(task)
        x, y = pad_batch([encode_answer(tok, msgs, "yes", 64), encode_answer(tok, msgs, "no", 64)], 0, "cpu")
        with torch.no_grad():
            lp = sequence_logps(model, x, y)
        return (lp[0] - lp[1]).item()

    cfg = load_config(None, {"init_from": str(base_model), "out_dir": str(tmp_path / "grpo"), "device": "cpu",
                             "threads": 1, "block_size": 64, "log_interval": 5, "data.keep": "end",
                             "reinforce.k": 4, "reinforce.steps": 10, "reinforce.lr": 3e-3})
    result = grpo(cfg, [task], check=check, extract=lambda a: a, sample=sample, progress=False)
    assert calls == [4] * 10
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(r["reward"] == 0.5 and r["passed"] == 2 for r in rows)
    assert all(math.isfinite(r["loss"]) and r["kl"] >= 0 for r in rows)
    assert preference(result.model_dir) > preference(base_model) + 0.5


def test_grpo_rejects_groups_of_one(tmp_path, base_model):
    from mgpt.llm.train.grpo import grpo

    cfg = load_config(None, {"init_from": str(base_model), "out_dir": str(tmp_path / "g"), "reinforce.k": 1})
    with pytest.raises(TrainError, match="at least 2"):
        grpo(cfg, load_tasks("train")[:1], check=None, extract=None)
