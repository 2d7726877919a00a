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
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.pretrain import pretrain

    overrides = {"threads": args.threads, "max_iters": args.max_iters, "out_dir": args.out}
    if args.max_iters != 2000:  # keep nanoGPT's schedule shape for shorter runs
        overrides["schedule.lr_decay_iters"] = args.max_iters
    if args.data:
        overrides["data.path"] = args.data
    cfg = load_config("shakespeare_char", overrides)
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


if __name__ == "__main__":
    main()
