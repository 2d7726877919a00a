"""Benchmark the trainer on nanoGPT's character-level Shakespeare (CPU settings).

    python benchmarks/bench_shakespeare.py                 # 1 thread, 2000 iters (~3-5 min)
    python benchmarks/bench_shakespeare.py --threads 2 --max-iters 500

Runs ``llm/train/configs/shakespeare_char.toml`` through ``mgpt.llm.train.pretrain`` and
prints the final val loss, ms/iter (training steps only: eval and checkpoint time left
out, as in nanoGPT's per-iteration log) and tokens/s. nanoGPT's reference for the same
settings: val loss 1.88 at iter 2000.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--data", default=None, help="tinyshakespeare.txt (default: the config's data.path)")
    ap.add_argument("--out", default="/tmp/bench_shakespeare", help="output folder (checkpoints, metrics)")
    ap.add_argument("--seed", type=int, default=None, help="override the config's seed (1337)")
    ap.add_argument("--reference", type=int, default=0, metavar="N",
                    help="also time N steps of a plain-PyTorch nanoGPT model of the same shape (same threads), "
                         "to compare with the machine as it is now")
    ap.add_argument("--config", default="shakespeare_char",
                    help="shipped config or path (shakespeare_char: GPT-2 like nanoGPT; shakespeare_char_llama)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.pretrain import pretrain

    overrides = {"threads": args.threads, "max_iters": args.max_iters, "out_dir": args.out}
    if args.max_iters != 2000:  # keep nanoGPT's schedule shape for shorter runs
        overrides["schedule.lr_decay_iters"] = args.max_iters
    if args.data:
        overrides["data.path"] = args.data
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(args.config, overrides)
    t0 = time.perf_counter()
    result = pretrain(cfg, progress=not args.quiet)
    wall = time.perf_counter() - t0

    rows = [json.loads(line) for line in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
    steady = [r["ms_per_iter"] for r in rows if r["kind"] == "train" and r["iter"] > 100]
    steady.sort()
    median = steady[len(steady) // 2] if steady else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, python {platform.python_version()}")
    print(f"threads: {result.threads}")
    print(f"iters: {result.iter_num}, tokens/iter: {cfg.tokens_per_iter}")
    print(f"val loss: {result.val_loss:.4f}  train loss (last eval): "
          f"{[r for r in rows if r['kind'] == 'eval'][-1]['train_loss']:.4f}")
    print(f"ms/iter: {result.ms_per_iter:.1f} mean, {median:.1f} median of log windows after iter 100")
    print(f"tokens/s: {result.tokens_per_s:,.0f} mean, {cfg.tokens_per_iter * 1000 / median:,.0f} at the median")
    print(f"wall time: {wall:.0f} s (with tokenizing, evals, checkpoints)")
    print(f"val loss over the whole val split: {full_val_loss(Path(args.out), cfg.block_size):.4f}")
    if args.reference:
        print(f"plain-PyTorch nanoGPT model, same shape and threads: {reference_ms(args.reference):.1f} ms/iter")


def full_val_loss(out: Path, block: int) -> float:
    """Mean loss over every non-overlapping block of val.bin: no sampling noise, unlike the
    20-batch estimate that nanoGPT (and the config) report."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from mgpt.llm.train.pretrain import quiet_hf

    with quiet_hf():
        model = AutoModelForCausalLM.from_pretrained(out).eval()
    meta = json.loads((out / "data" / "meta.json").read_text())
    val = np.fromfile(out / "data" / "val.bin", dtype=meta["dtype"]).astype(np.int64)
    n = (len(val) - 1) // block
    x = torch.from_numpy(val[: n * block]).view(n, block)
    y = torch.from_numpy(val[1: n * block + 1]).view(n, block)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 64):
            logits = model(input_ids=x[i:i + 64]).logits
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y[i:i + 64].reshape(-1), reduction="sum").item()
    return total / (n * block)


def reference_ms(steps: int) -> float:
    """ms per training step of nanoGPT's model (bias=False, no dropout) at 4x4x128, block 64, batch 12."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, C: int, H: int) -> None:
            super().__init__()
            self.H = H
            self.ln1, self.ln2 = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
            self.qkv, self.proj = nn.Linear(C, 3 * C, bias=False), nn.Linear(C, C, bias=False)
            self.fc, self.out = nn.Linear(C, 4 * C, bias=False), nn.Linear(4 * C, C, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, C = x.shape
            q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(C, 2))
            x = x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(65, 128), nn.Embedding(64, 128)
            self.blocks = nn.ModuleList(Block(128, 4) for _ in range(4))
            self.ln = nn.LayerNorm(128, bias=False)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
            for b in self.blocks:
                x = b(x)
            return F.linear(self.ln(x), self.wte.weight)

    torch.manual_seed(0)
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), fused=True)
    x, y = torch.randint(0, 65, (12, 64)), torch.randint(0, 65, (12, 64))

    def step() -> None:
        F.cross_entropy(model(x).view(-1, 65), y.view(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return 1000 * (time.perf_counter() - t0) / steps


if __name__ == "__main__":
    main()
