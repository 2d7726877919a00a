"""DPO: the loss against a hand-computed value, log 2 at the start, and a tiny model
learning a separable preference set (chosen answers "yes", rejected "no")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mgpt.llm.train.config import load_config
from mgpt.llm.train.errors import TrainError


def tiny_base(tmp: Path, corpus: str) -> Path:
    """A 1-layer GPT-2 on a char tokenizer, pretrained for a few steps on ``corpus``."""
    from mgpt.llm.train.pretrain import pretrain

    (tmp / "corpus.txt").write_text(corpus)
    cfg = load_config(None, {
        "data.path": str(tmp / "corpus.txt"), "out_dir": str(tmp / "base"), "device": "cpu", "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "block_size": 64, "batch_size": 4,
        "max_iters": 4, "eval_interval": 4, "eval_iters": 1})
    pretrain(cfg, progress=False)
    return tmp / "base"


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    return tiny_base(tmp_path_factory.mktemp("dpo_base"), "say yes no 0 1 2 3 4 5 ok.\n" * 60)


def dpo_config(tmp_path: Path, base: Path, **over):
    cfg = {"init_from": str(base), "out_dir": str(tmp_path / "dpo"), "device": "cpu", "threads": 1,
           "block_size": 64, "batch_size": 4, "log_interval": 5, "reinforce.steps": 30, "reinforce.lr": 3e-3,
           "reinforce.beta": 0.5}
    cfg.update(over)
    return load_config(None, cfg)


def test_dpo_loss_equals_hand_computed_value():
    import torch

    from mgpt.llm.train.dpo import dpo_loss

    # margins: 0.1 * ((-1 - -2) - (-3 - -2)) = 0.2 and 0.1 * ((-5 - -4) - (-2 - -2)) = -0.1
    loss, margin = dpo_loss(torch.tensor([-1.0, -5.0]), torch.tensor([-3.0, -2.0]),
                            torch.tensor([-2.0, -4.0]), torch.tensor([-2.0, -2.0]), beta=0.1)
    expected = (math.log(1 + math.exp(-0.2)) + math.log(1 + math.exp(0.1))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert margin.tolist() == pytest.approx([0.2, -0.1])


def test_sequence_logps_sums_answer_tokens_only(base_model):
    import torch

    from mgpt.llm.train.dpo import encode_answer, pad_batch, sequence_logps
    from mgpt.llm.train.sft import load_model_folder

    model, tok = load_model_folder(base_model)
    msgs = [{"role": "user", "content": "say 1"}]
    x, y = pad_batch([encode_answer(tok, msgs, "yes", 64), encode_answer(tok, msgs, "no ok", 64)], 0, "cpu")
    got = sequence_logps(model, x, y)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=x).logits, -1)
    for b in range(2):
        idx = [t for t in range(y.shape[1]) if y[b, t] != -100]
        assert len(idx) >= 2  # the answer's characters (and the end of turn)
        assert got[b].item() == pytest.approx(sum(logp[b, t, y[b, t]].item() for t in idx), abs=1e-4)


def separable_pairs(n: int = 6) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"say {i}"}], "chosen": "yes", "rejected": "no"}
            for i in range(n)]


def test_dpo_loss_falls_on_a_separable_preference_set(tmp_path, base_model):
    from mgpt.llm.train.dpo import dpo

    result = dpo(dpo_config(tmp_path, base_model), separable_pairs(), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 0
    assert result.last_loss < 0.5 * math.log(2)
    assert result.last_accuracy == 1.0
    assert (result.model_dir / "model.safetensors").is_file()


@pytest.mark.slow
def test_dpo_with_lora_uses_the_adapter_free_base_as_reference(tmp_path, base_model):
    from mgpt.llm.train.dpo import dpo

    cfg = dpo_config(tmp_path, base_model, **{"reinforce.lora": True, "lora.r": 4, "lora.alpha": 8,
                                              "reinforce.steps": 30, "reinforce.lr": 3e-2})
    result = dpo(cfg, separable_pairs(), progress=False)
    assert result.first_loss == pytest.approx(math.log(2), abs=1e-4)
    assert result.last_loss < result.first_loss
    assert (tmp_path / "dpo" / "adapter_config.json").is_file()
    assert (result.model_dir / "config.json").is_file()  # the merged model, a plain HF folder


def test_preference_pairs_from_samples_pair_passing_with_failing_of_the_same_task():
    from mgpt.llm.train.dpo import preference_pairs_from_samples
    from mgpt.llm.train.rft import Sample

    samples = [Sample("a", "good", True), Sample("a", "bad1", False), Sample("a", "bad2", False),
               Sample("b", "only good", True), Sample("c", "x", False)]
    pairs = preference_pairs_from_samples(samples, lambda t: [{"role": "user", "content": t}], per_task=4)
    assert [(p["task"], p["chosen"], p["rejected"]) for p in pairs] == [("a", "good", "bad1"), ("a", "good", "bad2")]


def test_bad_pairs_file_and_no_pairs_are_one_line_errors(tmp_path, base_model):
    from mgpt.llm.train.dpo import dpo, read_preference_pairs

    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"messages": [], "chosen": "x"}\n')
    with pytest.raises(TrainError, match="line 1"):
        read_preference_pairs(bad)
    with pytest.raises(TrainError, match="no preference pairs"):
        dpo(dpo_config(tmp_path, base_model), [], progress=False)
