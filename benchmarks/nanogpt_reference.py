"""nanoGPT's character-level Shakespeare run on a CPU, re-implemented as a yardstick.

    python benchmarks/nanogpt_reference.py --threads 1          # ~3-4 min

What ``bench_shakespeare.py`` compares our trainer with, measured on the same machine in
the same minutes (the shared 2-core VM moves by 10-20% from hour to hour, so a figure taken
on another day is no yardstick). It follows nanoGPT's ``data/shakespeare_char/prepare.py``,
``model.py`` and ``train.py`` as run with

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

that is: 65-character vocabulary, 90/10 split, a bias-free GPT (LayerNorm without bias,
exact GELU, SDPA attention, tied embeddings, GPT-2 init with scaled residual projections),
AdamW (0.9, 0.99) with weight decay 0.1 on matrices only and, on a CPU, PyTorch's default
(foreach) implementation, lr 1e-3 warmup 100 then cosine to 1e-4 at 2000, grad clip 1.0,
and ``estimate_loss`` over 20 random batches every 250 iterations. Seed 1337.

Prints the val loss at the last iteration and the time per training iteration (evals left
out). ``--json`` prints one JSON object instead, for ``bench_shakespeare.py --alongside``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--cpus", default=None, help="pin this process to these CPUs, e.g. 1 or 2,3")
    ap.add_argument("--json", action="store_true", help="print one JSON object with the results")
    args = ap.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    result = run(Path(args.data), args.threads, args.max_iters, args.seed, log=not args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"threads: {result['threads']}")
        print(f"val loss at iter {result['iters']}: {result['val_loss']:.4f} (train {result['train_loss']:.4f})")
        print(f"val loss over the whole val split: {result['full_val_loss']:.4f}")
        print(f"ms/iter: {result['ms_mean']:.1f} mean, {result['ms_median']:.1f} median of 10-iteration windows")
        print(f"tokens/s: {result['tokens_per_iter'] * 1000 / result['ms_median']:,.0f} at the median")


def run(data_path: Path, threads: int, max_iters: int, seed: int, log: bool = True) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    # prepare.py: the sorted characters of the file, first 90% train, last 10% val.
    text = data_path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n = int(len(ids) * 0.9)
    splits = {"train": ids[:n], "val": ids[n:]}
    vocab, block, batch, n_layer, n_head, n_embd = len(chars), 64, 12, 4, 4, 128

    def get_batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = splits[split]
        ix = torch.randint(len(data) - block, (batch,))
        x = torch.stack([torch.from_numpy(data[i:i + block].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block].astype(np.int64)) for i in ix])
        return x, y

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            C = n_embd
            self.ln_1, self.ln_2 = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
            self.c_attn, self.attn_proj = nn.Linear(C, 3 * C, bias=False), nn.Linear(C, C, bias=False)
            self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C, bias=False), nn.Linear(4 * C, C, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, C = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
            self.h = nn.ModuleList(Block() for _ in range(n_layer))
            self.ln_f = nn.LayerNorm(n_embd, bias=False)
            self.lm_head = nn.Linear(n_embd, vocab, bias=False)
            self.wte.weight = self.lm_head.weight  # weight tying
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, mean=0.0, std=0.02)
            for name, p in self.named_parameters():
                if name.endswith("proj.weight"):  # GPT-2's scaled init of the residual projections
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

        def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
            for b in self.h:
                x = b(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    model = GPT()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))  # fused only on CUDA in nanoGPT

    def get_lr(it: int) -> float:
        if it < 100:
            return 1e-3 * (it + 1) / 101
        ratio = (it - 100) / (max_iters - 100)  # lr_decay_iters = max_iters, as in the command above
        return 1e-4 + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (1e-3 - 1e-4)

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        model.eval()
        out = {split: torch.stack([model(*get_batch(split)) for _ in range(20)]).mean().item() for split in splits}
        model.train()
        return out

    times: list[float] = []
    losses = {"train": float("nan"), "val": float("nan")}
    t0 = time.perf_counter()
    for it in range(max_iters + 1):
        if it % 250 == 0 or it == max_iters:
            losses = estimate_loss()
            if log:
                print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)
            t0 = time.perf_counter()  # evals are not training time
        if it == max_iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        loss = model(*get_batch("train"))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # nanoGPT logs every iteration (--log_interval=1)
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
    # Summarised as bench_shakespeare.py summarises our trainer's log: the mean of each window
    # of 10 iterations after iteration 100, then the median of those windows.
    steady = times[100:] or times
    windows = sorted(sum(steady[i:i + 10]) / len(steady[i:i + 10]) for i in range(0, len(steady), 10))
    return {"iters": max_iters, "threads": torch.get_num_threads(), "tokens_per_iter": batch * block,
            "val_loss": losses["val"],
            "train_loss": losses["train"], "full_val_loss": full_val_loss(model, splits["val"], block),
            "ms_mean": 1000 * sum(steady) / len(steady), "ms_median": 1000 * windows[len(windows) // 2]}


def full_val_loss(model, val, block: int) -> float:
    """Mean loss over every non-overlapping block of the val split (no sampling noise)."""
    import numpy as np
    import torch

    n = (len(val) - 1) // block
    x = torch.from_numpy(val[: n * block].astype(np.int64)).view(n, block)
    y = torch.from_numpy(val[1: n * block + 1].astype(np.int64)).view(n, block)
    model.eval()
    with torch.no_grad():
        total = sum(model(x[i:i + 64], y[i:i + 64]).item() * len(x[i:i + 64]) for i in range(0, n, 64))
    return total / n


if __name__ == "__main__":
    main()
