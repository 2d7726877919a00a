"""The pretraining loop on a tiny model: learning, HF folders, exact resume, NaN stop, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mgpt.llm.train.config import load_config
from mgpt.llm.train.errors import TrainError

WORDS = "the quick brown fox jumps over a lazy dog and then it sleeps all day long".split()


def make_corpus(path: Path, n: int = 600) -> Path:
    import random

    rng = random.Random(0)
    path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(6)) + ".\n" for _ in range(n)))
    return path


def tiny_config(tmp_path: Path, out: str = "out", **overrides):
    """A 1-layer, 16-wide GPT-2 on characters: a step takes a few milliseconds on one thread."""
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        make_corpus(corpus)
    base = {
        "data.path": str(corpus), "out_dir": str(tmp_path / out), "device": "cpu", "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "block_size": 16, "batch_size": 4,
        "max_iters": 12, "eval_interval": 4, "eval_iters": 2, "log_interval": 1,
        "optim.lr": 1e-2, "optim.min_lr": 1e-3, "schedule.warmup_iters": 2, "schedule.lr_decay_iters": 12,
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(None, base)


def read_metrics(out: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mgpt.llm.train.pretrain import pretrain

    tmp = tmp_path_factory.mktemp("pretrain")
    cfg = tiny_config(tmp, max_iters=40, schedule__lr_decay_iters=40, eval_interval=20)
    result = pretrain(cfg, progress=False)
    return cfg, result


def test_loss_falls(trained):
    cfg, result = trained
    out = Path(cfg.out_dir)
    evals = read_metrics(out, "eval")
    assert [e["iter"] for e in evals] == [0, 20, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert result.iter_num == 40 and result.val_loss == pytest.approx(evals[-1]["val_loss"])
    train = read_metrics(out, "train")
    assert len(train) == 40 and train[-1]["loss"] < train[0]["loss"]
    assert (out / "loss.png").stat().st_size > 1000


def test_output_is_a_standard_hf_folder(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, _ = trained
    out = Path(cfg.out_dir)
    assert (out / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tok) and model.config.eos_token_id == tok.eos_token_id
    # The same weights as the training checkpoint: the same logits.
    state = torch.load(out / "ckpt" / "state.pt", weights_only=True)
    again = AutoModelForCausalLM.from_config(model.config).eval()
    again.load_state_dict(state["model"])
    ids = torch.tensor([tok("the lazy dog", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
        out_ids = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out_ids.shape[1] <= ids.shape[1] + 5


def test_resume_equals_uninterrupted_run(tmp_path):
    import torch

    from mgpt.llm.train.pretrain import pretrain

    # dropout > 0: the resumed run must also continue the torch RNG stream exactly.
    full = tiny_config(tmp_path, "full", model__dropout=0.1)
    pretrain(full, progress=False)
    part = tiny_config(tmp_path, "part", model__dropout=0.1, max_iters=6)  # "interrupted" at iter 6
    pretrain(part, progress=False)
    resumed = tiny_config(tmp_path, "part", model__dropout=0.1)
    pretrain(resumed, resume=True, progress=False)

    a, b = read_metrics(tmp_path / "full", "train"), read_metrics(tmp_path / "part", "train")
    assert [r["iter"] for r in b] == list(range(1, 13))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # exactly, not approximately
    ea = {r["iter"]: r["val_loss"] for r in read_metrics(tmp_path / "full", "eval")}
    eb = {r["iter"]: r["val_loss"] for r in read_metrics(tmp_path / "part", "eval")}
    assert eb.pop(6) and ea == eb  # the interrupted run's last eval (iter 6) is the only extra one
    sa = torch.load(tmp_path / "full" / "ckpt" / "state.pt", weights_only=True)["model"]
    sb = torch.load(tmp_path / "part" / "ckpt" / "state.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_without_checkpoint_is_an_error(tmp_path):
    from mgpt.llm.train.pretrain import pretrain

    with pytest.raises(TrainError, match="nothing to resume"):
        pretrain(tiny_config(tmp_path, tokenizer__path=None), resume=True, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from mgpt.llm.train.pretrain import pretrain

    pretrain(tiny_config(tmp_path, max_iters=4), progress=False)
    ckpt = tmp_path / "out" / "ckpt" / "state.pt"
    before = ckpt.read_bytes()
    with pytest.raises(TrainError, match=r"diverged.*last good checkpoint"):
        pretrain(tiny_config(tmp_path, optim__lr=1e30), resume=True, progress=False)
    assert ckpt.read_bytes() == before  # never overwritten by the bad run
    state = torch.load(ckpt, weights_only=True)
    assert state["iter_num"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values())
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_data_errors_are_clear(tmp_path):
    from mgpt.llm.train.pretrain import pretrain

    with pytest.raises(TrainError, match="data file not found"):
        pretrain(tiny_config(tmp_path, data__path=str(tmp_path / "nope.txt")), progress=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TrainError, match="data file is empty"):
        pretrain(tiny_config(tmp_path, data__path=str(tmp_path / "empty.txt")), progress=False)
    with pytest.raises(TrainError, match="block_size 100000 is longer than the train data"):
        pretrain(tiny_config(tmp_path, block_size=100000), progress=False)


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
def test_other_families_and_grad_accum(tmp_path, family):
    import torch
    from transformers import AutoModelForCausalLM

    from mgpt.llm.train.pretrain import pretrain

    cfg = tiny_config(tmp_path, model__family=family, max_iters=3, grad_accum=2, eval_interval=3)
    result = pretrain(cfg, progress=False)
    assert result.iter_num == 3 and read_metrics(Path(cfg.out_dir), "eval")[-1]["iter"] == 3
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert model.config.model_type == family
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight  # tied, as in nanoGPT
    # Causal as trained: changing later tokens leaves the logits of earlier ones alone.
    x = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % model.config.vocab_size
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6) and not torch.allclose(a[:, 10:], b[:, 10:], atol=1e-3)


def test_get_lr_warmup_then_cosine(tmp_path):
    from mgpt.llm.train.pretrain import get_lr

    cfg = tiny_config(tmp_path, optim__lr=1.0, optim__min_lr=0.1, schedule__warmup_iters=10,
                      schedule__lr_decay_iters=110)
    assert get_lr(0, cfg) == pytest.approx(1 / 11)
    assert get_lr(9, cfg) == pytest.approx(10 / 11)
    assert get_lr(10, cfg) == pytest.approx(1.0)
    assert get_lr(60, cfg) == pytest.approx(0.55)  # half way down the cosine
    assert get_lr(110, cfg) == pytest.approx(0.1) and get_lr(500, cfg) == pytest.approx(0.1)


@pytest.mark.slow
def test_two_process_ddp(tmp_path):
    """torchrun with 2 CPU processes (gloo): both train, rank 0 alone writes one checkpoint."""
    cfg = tiny_config(tmp_path, max_iters=4, eval_interval=2)
    script = tmp_path / "run_ddp.py"
    script.write_text(
        "import json, os, sys\n"
        "from mgpt.llm.train.config import load_config\n"
        "from mgpt.llm.train.pretrain import pretrain\n"
        "r = pretrain(load_config(None, json.loads(sys.argv[1])), progress=True)\n"
        # a file per rank: the two ranks' printed lines can interleave mid-line
        "open(f\"done{os.environ['RANK']}\", 'w').write(str(r.iter_num))\n")
    overrides = {k: v for k, v in cfg.model_dump(mode="json").items() if not isinstance(v, dict)}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for section in ("model", "data", "optim", "schedule"):
        for k, v in getattr(cfg, section).model_dump(mode="json").items():
            if v is not None:
                overrides[f"{section}.{k}"] = v
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         json.dumps(overrides)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [(tmp_path / f"done{rank}").read_text() for rank in (0, 1)] == ["4", "4"]
    assert "world size 2" in proc.stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["state.pt"]
    import torch

    state = torch.load(out / "ckpt" / "state.pt", weights_only=True)
    assert state["iter_num"] == 4 and len(state["ranks"]) == 2
    assert (out / "model.safetensors").is_file()
    assert [r["iter"] for r in read_metrics(out, "eval")] == [0, 2, 4]  # rank 0 alone logged
