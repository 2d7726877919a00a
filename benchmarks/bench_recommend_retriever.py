"""The recommender team's default retriever, chosen on the validation item only.

The team's ranker re-orders the retriever's top ``K`` candidates (``--k``, default 20, as
``mgpt recommend`` and ``mgpt eval recommend``), so what the retriever must do well is put
the held-out movie in its top K; its own order within the top matters less. For each
retriever named (default: ALS and mgpt's co-occurrence embedding, with the settings
``mgpt.domains.movielens.store.RETRIEVERS`` holds), on each seed, this measures on each
user's validation item (learning from the training items): NDCG@10, Recall@10, Recall@K,
Recall@50 by full ranking, and the seconds training took. Test is never read.

    PYTHONPATH=. nice -n 10 python3 benchmarks/bench_recommend_retriever.py --out runs/bench_recommend_retriever

Writes ``results.json`` and ``table.md`` into ``--out``; each (retriever, seed) measured is
kept there, so a rerun reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MGPT_THREADS"):
    os.environ.setdefault(_name, "1")


def measure(name: str, seed: int, k: int, split, fold) -> dict:
    import numpy as np

    from mgpt.domains.movielens.metrics import full_ranks
    from mgpt.domains.movielens.store import retriever_named

    started = time.perf_counter()
    scorer = retriever_named(name, seed).fit(fold)
    fit_s = time.perf_counter() - started
    users, ranks = fold.users, []
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        ranks.append(full_ranks(scorer.scores(chunk), fold.target[chunk], [fold.mask[u] for u in chunk]))
    r = np.concatenate(ranks)
    return {"retriever": name, "seed": seed, "fit_s": round(fit_s, 1), "users": len(r),
            "ndcg@10": float(np.mean(np.where(r <= 10, 1 / np.log2(r + 1), 0.0))),
            **{f"recall@{n}": float(np.mean(r <= n)) for n in sorted({10, k, 50})}}


def cell(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs]
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--retrievers", nargs="+", default=["als", "cooc"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--k", type=int, default=20, help="the candidates the team's ranker re-orders")
    p.add_argument("--out", type=Path, default=Path("runs/bench_recommend_retriever"))
    args = p.parse_args(argv)

    from mgpt.domains.movielens.data import load_movielens
    from mgpt.domains.movielens.split import leave_one_out

    data = load_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("valid")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {}
    for name in args.retrievers:
        for seed in args.seeds:
            kept = args.out / f"{name}-seed{seed}-k{args.k}.json"
            if not kept.is_file():
                kept.write_text(json.dumps(measure(name, seed, args.k, split, fold)))
            rows.setdefault(name, []).append(json.loads(kept.read_text()))
            print(json.dumps(rows[name][-1]), flush=True)
    keys = ["ndcg@10", *sorted({f"recall@{n}" for n in {10, args.k, 50}}, key=lambda s: int(s.split("@")[1]))]
    lines = [f"| retriever | seeds | {' | '.join(keys)} | fit s |", "|---|---:|" + "---:|" * (len(keys) + 1)]
    for name, runs in rows.items():
        fit = f"{min(r['fit_s'] for r in runs):.1f}-{max(r['fit_s'] for r in runs):.1f}"
        lines.append(f"| {name} | {len(runs)} | {' | '.join(cell(runs, key) for key in keys)} | {fit} |")
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "argv": vars(args) | {"out": str(args.out)}},
                                                      indent=1))
    print(table)


if __name__ == "__main__":
    main()
