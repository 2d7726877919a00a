"""Meta-learning figures: Reptile's adaptation curves against the honest baselines, and a
second-order MAML check on sine regression.

    python benchmarks/bench_meta.py                 # meta_tiny, 3 seeds, then the sine check
    python benchmarks/bench_meta.py --seeds 5 --set max_iters=200
    python benchmarks/bench_meta.py --skip-sine

Part 1 runs ``mgpt train meta meta_tiny`` (Reptile over synthetic task families: copy /
reverse / rotate, then a shift cipher with the family's key) and prints held-out loss and
token accuracy after 0, 1, 5 and 20 adaptation steps (mean ± sd over seeds) from the
meta-learned init, from the base fine-tuned on the union of the training families for as
many gradient steps, and from the plain base.

Part 2 (:func:`mgpt.llm.train.meta.maml_sine_check`): MSE on held-out sine tasks after 0, 1
and 10 SGD steps from second-order MAML, first-order MAML, Reptile and an untrained net.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="Override a meta_tiny config key.")
    ap.add_argument("--skip-sine", action="store_true")
    ap.add_argument("--sine-iters", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("out/bench_meta"))
    args = ap.parse_args()

    import torch

    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.meta import format_curves, maml_sine_check, run_meta

    torch.set_num_threads(1)
    overrides = [*args.sets, f'out_dir="{args.out}"']
    cfg = load_config("meta_tiny", overrides)
    t0 = time.perf_counter()
    curves = run_meta(cfg, seeds=args.seeds, progress=False)
    m = cfg.meta
    print(f"Reptile: {cfg.max_iters} meta-iterations x {m.tasks_per_batch} tasks x k={m.inner_steps} "
          f"(inner lr {m.inner_lr}, outer lr {m.outer_lr}), {m.train_families} training / {m.eval_families} "
          f"held-out families, {args.seeds} seeds, {time.perf_counter() - t0:.0f} s wall, torch threads 1\n")
    print(format_curves(curves))
    sys.stdout.flush()
    if not args.skip_sine:
        t0 = time.perf_counter()
        rows = {}
        for seed in range(args.seeds):
            for method, curve in maml_sine_check(meta_iters=args.sine_iters, seed=seed).items():
                for step, mse in curve.items():
                    rows.setdefault(method, {}).setdefault(step, []).append(mse)
        import statistics

        print(f"\nSine regression (10 shots, inner SGD lr 0.01, {args.sine_iters} meta-iterations, "
              f"{args.seeds} seeds, {time.perf_counter() - t0:.0f} s): held-out MSE, mean ± sd\n")
        steps = sorted(next(iter(rows.values())))
        print("| start | " + " | ".join(f"MSE @{s}" for s in steps) + " |")
        print("|---|" + "---|" * len(steps))
        for method, by_step in rows.items():
            cells = [f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}"
                     for v in (by_step[s] for s in steps)]
            print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
