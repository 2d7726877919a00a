"""RFT, DPO and GRPO under torchrun with 2 CPU processes (gloo): the DDP paths that
tests/llm/test_cuda.py runs with NCCL on a GPU, run here on every machine. Each trainer wraps
its model in DDP, both ranks finish every step, and rank 0 alone writes each model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the trainers need the [train] extra")

SCRIPT = Path(__file__).resolve().parent / "ddp_reinforce.py"


@pytest.mark.slow
def test_torchrun_ddp_pretrain_rft_dpo_grpo_on_cpu(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. say yes or no 0 1 2 3.\n" * 200)
    base = {"data.path": str(corpus), "out_dir": str(tmp_path / "base"), "device": "cpu",
            "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 32, "block_size": 64, "batch_size": 4,
            "max_iters": 4, "eval_interval": 4, "eval_iters": 1, "log_interval": 4, "optim.lr": 3e-3}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
         str(tmp_path), json.dumps(base)],
        capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for done in ranks:
        assert done["pretrain"] == 4 and done["rft"] == 1 and done["dpo"][0] == 6 and done["grpo"] == 6
        assert done["dpo"][2] < done["dpo"][1]  # the chosen answer gained on the rejected one
        # pretrain, RFT's fine-tune, DPO and GRPO: four models wrapped in DDP on each rank
        assert done["ddp_wraps"] == 4
    for name in ("base", "rft", "dpo", "grpo"):
        assert any((tmp_path / name).rglob("*.safetensors")), f"{name} wrote no model"
