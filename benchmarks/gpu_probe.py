"""Size the learning loop for a GPU machine: how fast a SmolLM2-135M-shaped model samples
and trains there, and how fast the code bank's answers are checked on its cores.

    PYTHONPATH=... python3 benchmarks/gpu_probe.py [--out DIR]

Random weights with SmolLM2-135M's shape (30 layers, hidden 576, 9 heads / 3 KV heads,
vocab 49152), bf16 on CUDA: HF ``generate`` sampling at a few batch sizes, and full
fine-tuning steps (AdamW, bf16 autocast). Then every task's reference solution is checked
in parallel with :func:`mgpt.llm.eval.code_sandbox.sandbox_check` (the sandbox mgpt picks:
bubblewrap, or ``MGPT_SANDBOX=none`` where there is none): wall time, and that all pass.
Prints one line per figure and writes them to ``DIR/gpu_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def smol_shaped(device: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(device)


def probe_generate(model, batch: int, prompt: int, new: int) -> dict:
    import torch

    ids = torch.randint(3, 49152, (batch, prompt), device=model.device)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.8,
                             max_new_tokens=new, min_new_tokens=new, pad_token_id=2)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {"batch": batch, "prompt": prompt, "new": new, "seconds": round(wall, 2),
            "tokens_per_s": round(batch * (out.shape[1] - prompt) / wall)}


def probe_train(model, batch: int, length: int, steps: int) -> dict:
    import torch

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randint(3, 49152, (batch, length), device=model.device)
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.eval()
    return {"batch": batch, "length": length, "ms_per_step": round(1000 * sorted(times)[len(times) // 2], 1)}


def probe_checks(workers: int) -> dict:
    from mgpt.sandbox.isolation import sandbox_mode
    from mgpt.llm.eval.tasks import load_tasks
    from mgpt.llm.eval.code_sandbox import sandbox_check

    tasks = load_tasks("all")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda t: sandbox_check(t, t.reference), tasks))
    wall = time.perf_counter() - t0
    return {"tasks": len(tasks), "passed": sum(r.passed for r in results), "workers": workers,
            "seconds": round(wall, 1), "per_check_s": round(wall * workers / len(tasks), 2),
            "failed": [t.id for t, r in zip(tasks, results) if not r.passed][:10],
            "sandbox": sandbox_mode()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 4)
    args = parser.parse_args()
    import torch

    found: dict = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                   "torch": torch.__version__, "cpus": os.cpu_count()}
    print(json.dumps(found), flush=True)
    out = Path(args.out) / "gpu_probe.json"

    def save() -> None:
        out.write_text(json.dumps(found, indent=1))

    found["checks"] = probe_checks(args.workers)
    print("checks", json.dumps(found["checks"]), flush=True)
    save()
    if torch.cuda.is_available():
        model = smol_shaped("cuda").to(torch.bfloat16).eval()
        found["generate"] = []
        for batch in (1, 64, 256):
            found["generate"].append(probe_generate(model, batch, prompt=200, new=128))
            print("generate", json.dumps(found["generate"][-1]), flush=True)
            save()
        model = smol_shaped("cuda")  # fp32 master weights, bf16 autocast
        found["train"] = [probe_train(model, b, 512, 6) for b in (8, 32)]
        print("train", json.dumps(found["train"]), flush=True)
        save()


if __name__ == "__main__":
    main()
