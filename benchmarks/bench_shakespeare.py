"""Benchmark the trainer on nanoGPT's character-level Shakespeare (CPU settings).

    python benchmarks/bench_shakespeare.py --alongside     # ours and nanoGPT's loop, same minutes
    python benchmarks/bench_shakespeare.py --config shakespeare_char_llama --alongside
    python benchmarks/bench_shakespeare.py --threads 2 --max-iters 500

Runs ``llm/train/configs/shakespeare_char.toml`` (or ``--config``) through
``mgpt.llm.train.pretrain`` and prints the final val loss, ms/iter (training steps only:
eval and checkpoint time left out, as in nanoGPT's per-iteration log) and tokens/s.

``--alongside`` runs ``nanogpt_reference.py`` (nanoGPT's CPU run, re-implemented) at the same
time on another core, each process pinned to its own CPU, and prints both side by side: on
a shared machine whose speed drifts by 10-20% over minutes, only a yardstick measured in the
same minutes says which is faster. ``--cpus 1,0`` swaps the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--data", default=None, help="tinyshakespeare.txt (default: the config's data.path)")
    ap.add_argument("--out", default="/tmp/bench_shakespeare", help="output folder (checkpoints, metrics)")
    ap.add_argument("--seed", type=int, default=None, help="override the config's seed (1337)")
    ap.add_argument("--config", default="shakespeare_char",
                    help="shipped config or path (shakespeare_char: GPT-2 like nanoGPT; shakespeare_char_llama, "
                         "shakespeare_char_neox)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, as in `mgpt train pretrain --set` (repeatable)")
    ap.add_argument("--alongside", action="store_true",
                    help="run nanogpt_reference.py at the same time on another CPU and compare")
    ap.add_argument("--cpus", default=None, metavar="OURS,REF",
                    help="CPUs to pin ours and the reference to with --alongside (default: the first two usable)")
    ap.add_argument("--spread", type=int, default=0, metavar="N",
                    help="also score the final model on N draws of eval_iters random val batches, to show how "
                         "much the 20-batch estimate moves with the batches drawn (N=100: ~30 s)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    from mgpt.llm.train.config import load_config, parse_overrides
    from mgpt.llm.train.pretrain import pretrain

    overrides = {"threads": args.threads, "max_iters": args.max_iters, "out_dir": args.out}
    if args.max_iters != 2000:  # keep nanoGPT's schedule shape for shorter runs
        overrides["schedule.lr_decay_iters"] = args.max_iters
    if args.data:
        overrides["data.path"] = args.data
    if args.seed is not None:
        overrides["seed"] = args.seed
    overrides.update(parse_overrides(args.set))
    cfg = load_config(args.config, overrides)
    ref = start_reference(args, cfg.data.path) if args.alongside else None
    t0 = time.perf_counter()
    try:
        result = pretrain(cfg, progress=not args.quiet)
    except BaseException:
        if ref is not None:
            ref[0].kill()
        raise
    wall = time.perf_counter() - t0

    rows = [json.loads(line) for line in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
    windows = [r for r in rows if r["kind"] == "train"]
    steady = sorted(r["ms_per_iter"] for r in [w for w in windows if w["iter"] > 100] or windows)
    median = steady[len(steady) // 2] if steady else float("nan")
    mean = sum(steady) / len(steady) if steady else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, python {platform.python_version()}")
    print(f"threads: {result.threads}")
    print(f"iters: {result.iter_num}, tokens/iter: {cfg.tokens_per_iter}")
    print(f"val loss: {result.val_loss:.4f}  train loss (last eval): "
          f"{[r for r in rows if r['kind'] == 'eval'][-1]['train_loss']:.4f}")
    print(f"ms/iter: {mean:.1f} mean, {median:.1f} median of the log windows "
          f"({cfg.log_interval} iterations each) after iter 100")
    print(f"tokens/s: {cfg.tokens_per_iter * 1000 / mean:,.0f} at the mean, "
          f"{cfg.tokens_per_iter * 1000 / median:,.0f} at the median")
    print(f"wall time: {wall:.0f} s (with tokenizing, evals, checkpoints)")
    full = full_val_loss(Path(args.out), cfg.block_size)
    print(f"val loss over the whole val split: {full:.4f}")
    if args.spread:
        est = estimate_spread(Path(args.out), cfg, args.spread)
        mu = sum(est) / len(est)
        sd = (sum((e - mu) ** 2 for e in est) / len(est)) ** 0.5
        print(f"{cfg.eval_iters}-batch val estimate over {len(est)} random draws: mean {mu:.4f}, sd {sd:.4f}, "
              f"min {min(est):.4f}, max {max(est):.4f}, <= 1.89 in {sum(e <= 1.89 for e in est)} of {len(est)}")
    first = next((r for r in rows if r["kind"] == "train"), None)
    if cfg.compile and first:
        print(f"first {first['iter']} iterations: {first['iter'] * first['ms_per_iter'] / 1000:.1f} s "
              f"(torch.compile happens here)")
    if ref is not None:
        proc, cpus = ref
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"nanogpt_reference.py failed (exit {proc.returncode})")
        r = json.loads(out.strip().splitlines()[-1])
        ours_val = [e for e in rows if e["kind"] == "eval"][-1]["val_loss"]
        print(f"\nside by side, same minutes, one process per CPU (ours on CPU {cpus[0]}, nanoGPT's on CPU {cpus[1]}):")
        print(f"{'':28s}{'ours':>12s}{'nanoGPT':>12s}")
        print(f"{'val loss (20 batches)':28s}{ours_val:12.4f}{r['val_loss']:12.4f}")
        print(f"{'val loss (whole split)':28s}{full:12.4f}{r['full_val_loss']:12.4f}")
        print(f"{'ms/iter (median)':28s}{median:12.1f}{r['ms_median']:12.1f}")
        print(f"{'ms/iter (mean)':28s}{mean:12.1f}{r['ms_mean']:12.1f}")
        ours_tok, ref_tok = cfg.tokens_per_iter * 1000 / median, r["tokens_per_iter"] * 1000 / r["ms_median"]
        print(f"{'tokens/s (median)':28s}{ours_tok:12,.0f}{ref_tok:12,.0f}")
        print(f"ours/nanoGPT tokens/s at the median: {ours_tok / ref_tok:.3f}")


def start_reference(args: argparse.Namespace, data: str) -> tuple[subprocess.Popen, tuple[int, int]]:
    """Start nanogpt_reference.py on ``data``, pinned to its CPUs, and pin this process to ours
    (``--threads`` CPUs each, from ``--cpus`` or the first usable ones)."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2 * args.threads:
        sys.exit(f"--alongside needs {2 * args.threads} CPUs ({args.threads} threads each); this process may use {usable}")
    try:
        cpus = tuple(int(c) for c in args.cpus.split(",")) if args.cpus else (usable[0], usable[args.threads])
    except ValueError:
        cpus = ()
    ours = set(usable[usable.index(cpus[0]):][: args.threads]) if cpus and cpus[0] in usable else set()
    theirs = set(usable[usable.index(cpus[1]):][: args.threads]) if len(cpus) == 2 and cpus[1] in usable else set()
    if len(cpus) != 2 or len(ours) < args.threads or len(theirs) < args.threads or ours & theirs:
        sys.exit(f"--cpus wants two different CPUs out of {usable}, each the first of {args.threads} CPUs "
                 f"that do not overlap; got {args.cpus!r}")
    cmd = [sys.executable, str(Path(__file__).with_name("nanogpt_reference.py")), "--json", "--data", data,
           "--threads", str(args.threads), "--max-iters", str(args.max_iters), "--cpus", ",".join(map(str, sorted(theirs)))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    os.sched_setaffinity(0, ours)
    return proc, cpus


def load_final(out: Path) -> tuple[Any, Any]:
    """The run's exported HF model (eval mode) and its val split as int64 token ids."""
    import numpy as np
    from mgpt.llm.train.pretrain import quiet_hf
    from transformers import AutoModelForCausalLM

    with quiet_hf():
        model = AutoModelForCausalLM.from_pretrained(out).eval()
    meta = json.loads((out / "data" / "meta.json").read_text())
    return model, np.fromfile(out / "data" / "val.bin", dtype=meta["dtype"]).astype(np.int64)


def full_val_loss(out: Path, block: int) -> float:
    """Mean loss over every non-overlapping block of val.bin: no sampling noise, unlike the
    20-batch estimate that nanoGPT (and the config) report."""
    import torch
    import torch.nn.functional as F

    model, val = load_final(out)
    n = (len(val) - 1) // block
    x = torch.from_numpy(val[: n * block]).view(n, block)
    y = torch.from_numpy(val[1: n * block + 1]).view(n, block)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 64):
            logits = model(input_ids=x[i:i + 64]).logits
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y[i:i + 64].reshape(-1), reduction="sum").item()
    return total / (n * block)


def estimate_spread(out: Path, cfg: Any, draws: int) -> list[float]:
    """The final model's val loss estimated ``draws`` times, each on ``cfg.eval_iters`` random
    batches as the trainer's eval does (but a fresh draw each time)."""
    import numpy as np
    import torch
    from mgpt.llm.train.pretrain import lm_loss

    model, val = load_final(out)
    gen, T = torch.Generator().manual_seed(0), cfg.block_size
    estimates = []
    with torch.no_grad():
        for _ in range(draws):
            losses = []
            for _ in range(cfg.eval_iters):
                ix = torch.randint(len(val) - T, (cfg.batch_size,), generator=gen).numpy()
                rows = torch.from_numpy(val[ix[:, None] + np.arange(T + 1)])
                losses.append(lm_loss(model(input_ids=rows[:, :-1]).logits, rows[:, 1:]).item())
            estimates.append(sum(losses) / len(losses))
    return estimates


if __name__ == "__main__":
    main()
