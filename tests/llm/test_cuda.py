"""The CUDA paths, run where a GPU is (skipped on CPU-only machines, such as CI's).

Each test drives the public entry point a user would on a GPU machine: bf16 pretraining,
DDP through torchrun (NCCL) for pretrain, RFT, DPO and GRPO, the local backend in bf16 with
the grammar mask on the device, the lean decoder on CUDA against HF, the serving engine's
batched answers against unbatched ones, and perplexity on the GPU. Tiny models from a
config; nothing is downloaded. Run them with ``python -m pytest -q -m cuda``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the CUDA paths need the [train] extra")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine"),
]

from mgpt.llm.train.config import load_config  # noqa: E402
from testpaths import ROOT



def _corpus(tmp: Path) -> Path:
    path = tmp / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. say yes or no 0 1 2 3.\n" * 200)
    return path


def _tiny_pretrain(tmp: Path, out: str = "base", **over) -> dict:
    cfg = {"data.path": str(_corpus(tmp)), "out_dir": str(tmp / out), "device": "cuda",
           "model.n_layer": 2, "model.n_head": 2, "model.n_embd": 64, "block_size": 64, "batch_size": 8,
           "max_iters": 30, "eval_interval": 10, "eval_iters": 2, "log_interval": 10, "optim.lr": 3e-3}
    cfg.update(over)
    return cfg


def test_pretrain_on_cuda_in_bf16_learns_and_saves(tmp_path):
    from mgpt.llm.train.pretrain import pretrain
    from mgpt.llm.train.sft import load_model_folder

    result = pretrain(load_config(None, _tiny_pretrain(tmp_path)), progress=False)
    rows = [json.loads(x) for x in (tmp_path / "base" / "metrics.jsonl").read_text().splitlines()]
    evals = [r["val_loss"] for r in rows if r["kind"] == "eval"]
    assert result.iter_num == 30 and len(evals) == 4
    assert all(math.isfinite(v) for v in evals) and evals[-1] < evals[0], evals
    model, _ = load_model_folder(tmp_path / "base")
    assert all(torch.isfinite(p).all() for p in model.parameters())




def test_torchrun_ddp_pretrain_rft_dpo_grpo_on_cuda(tmp_path):
    """One process per GPU through torchrun (NCCL): every trainer wraps its model in DDP."""
    script = ROOT / "tests" / "llm" / "train" / "ddp_reinforce.py"
    nproc = torch.cuda.device_count()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script),
         str(tmp_path), json.dumps(_tiny_pretrain(tmp_path, max_iters=10))],
        capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]
    for done in ranks:
        assert done["pretrain"] == 10 and done["rft"] == 1 and done["dpo"][0] == 6 and done["grpo"] == 6
        assert done["ddp_wraps"] == 4  # pretrain, RFT's fine-tune, DPO, GRPO (torchrun wraps even one process)
        assert done["cuda_mem"] > 0
    for name in ("base", "rft", "dpo", "grpo"):
        assert any((tmp_path / name).rglob("*.safetensors")), f"{name} wrote no model"


def _tiny_llama_dir(tmp: Path) -> Path:
    from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

    from mgpt.llm.local.testing import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp / "llama", chat_template=True, n_positions=1024)
    base = AutoConfig.from_pretrained(folder)
    config = LlamaConfig(
        vocab_size=base.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=base.eos_token_id, eos_token_id=base.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # peaked logits: greedy choices are not near-ties
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("decoder", ["hf", "fast"])
def test_local_backend_on_cuda_is_bf16_and_keeps_the_grammar(tmp_path, decoder):
    from pydantic import BaseModel

    from mgpt.llm import ChatMessage, OutputFormat
    from mgpt.llm.local.model import LocalModel

    class Plan(BaseModel):
        title: str
        steps: list[str]
        risky: bool

    model = LocalModel(_tiny_llama_dir(tmp_path), max_new_tokens=300, temperature=1.0, seed=3, decoder=decoder)
    messages = [ChatMessage(role="user", content="Plan the word counter.")]
    for seed in range(3):
        model.seed = seed
        answer = asyncio.run(model.complete(messages, output=OutputFormat.from_model(Plan))).text
        Plan.model_validate_json(answer)
    loaded = model._load()
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert str(loaded.device).startswith("cuda")
    assert (loaded.fast is not None) == (decoder == "fast")


def test_fast_decoder_on_cuda_matches_hf_greedy(tmp_path):
    from transformers import AutoModelForCausalLM

    from mgpt.llm.local.fastllama import FastLlama

    torch.backends.cuda.matmul.allow_tf32 = False  # pretraining turns it on process-wide
    folder = _tiny_llama_dir(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).cuda().eval()
    ids = torch.randint(3, model.config.vocab_size, (1, 19), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, min_new_tokens=24,
                             do_sample=False, pad_token_id=0)[0, ids.shape[1]:].tolist()
    fast = FastLlama.from_model(model, device="cuda", dtype=torch.float32)
    got = fast.generate(ids[0].tolist(), max_new_tokens=24, temperature=0.0, eos_ids=[]).tokens
    assert got == ref
    bf16 = FastLlama.from_model(model, device="cuda")  # bf16 by default on a GPU
    tokens = bf16.generate(ids[0].tolist(), max_new_tokens=24, temperature=0.0, eos_ids=[]).tokens
    assert len(tokens) == 24 and sum(a == b for a, b in zip(tokens, ref)) >= 12


def test_engine_on_cuda_batched_equals_unbatched(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mgpt.llm.serve.engine import Engine, SamplingParams

    folder = _tiny_llama_dir(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).cuda().eval()
    tok = AutoTokenizer.from_pretrained(folder)
    prompts = [[5, 17, 42, 99, 3, 8, 120, 77], [11, 12], [200, 31, 64, 9, 250], [7] * 23, [60]]
    params = SamplingParams(max_tokens=16, temperature=0.0, ignore_eos=True)
    one = Engine(model, tok, max_batch=1).start()
    try:
        alone = [one.generate([p], params)[0].token_ids for p in prompts]
    finally:
        one.stop()
    many = Engine(model, tok, max_batch=8).start()
    try:
        together = [r.token_ids for r in many.generate(prompts, params)]
    finally:
        many.stop()
    assert together == alone


def test_perplexity_on_cuda_equals_cpu(tmp_path):
    from mgpt.llm.eval.perplexity import perplexity_of_text
    from mgpt.llm.local.generate import load_model

    folder = _tiny_llama_dir(tmp_path)
    text = "the quick brown fox jumps over the lazy dog. " * 20
    cpu = perplexity_of_text(load_model(folder, device="cpu", dtype=torch.float32), text, block_size=128)
    gpu = perplexity_of_text(load_model(folder, device="cuda", dtype=torch.float32), text, block_size=128)
    assert gpu.tokens == cpu.tokens and gpu.perplexity == pytest.approx(cpu.perplexity, rel=1e-3)
