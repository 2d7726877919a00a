"""The recommender team beside RecBole's baselines, on exactly the users the team was measured on.

``mgpt eval recommend`` runs the team on a fixed draw of users (the embedded model takes a
minute or more a user on a CPU), while RecBole's baselines (``bench_recommend.py``) rank
every user. This puts them on the same users: each RecBole run's saved score matrix
(``scores.npz``) is ranked with mgpt's metrics (full: all movies less the user's training and
validation items; sampled: 99 unrated movies drawn with the evaluation's seed, the same
negatives as the team's) on the users whose team results the evaluation holds, beside the
team's rows (the retriever on those users, the random control, retriever + LLM ranker, the
full team), with every row's NDCG@10 on all 943 users where it has one.

    PYTHONPATH=. python3 benchmarks/bench_recommend_team.py --eval runs/eval_recommend/results.json \\
        --recbole runs/bench_recommend/recbole --out runs/bench_recommend_team

``--eval`` is ``mgpt eval recommend``'s ``results.json`` (``--report`` writes one for a stopped
run); ``--recbole`` is ``bench_recommend.py``'s ``OUT/recbole`` (one ``MODEL-SEED`` folder a
run). Writes ``results.json`` and ``table.md`` into ``--out``. Runs no model: seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

MODELS = ("Pop", "ItemKNN", "BPR", "LightGCN", "SASRec")


def measured_users(evaluation: dict) -> list[str]:
    """The users every seed with team results measured."""
    sets = [{x["user"] for x in lines} for lines in evaluation["users"].values() if lines]
    if not sets:
        raise SystemExit("the evaluation holds no team results: run mgpt eval recommend (or --report) first")
    return sorted(set.intersection(*sets), key=int)


def recbole_ranks(folder: Path, split, fold, protocol) -> tuple:
    """A RecBole run's ranks of every test user (``fold.users`` order), full and sampled."""
    import numpy as np

    from mgpt.domains.movielens.evaluate import user_ranks

    saved = np.load(folder / "scores.npz")
    order = {t: j for j, t in enumerate(saved["items"])}
    by_user = {t: r for r, t in enumerate(saved["users"])}
    matrix = saved["scores"][[by_user[u] for u in split.user_ids]][:, [order[t] for t in split.item_ids]]
    return user_ranks(lambda users: matrix[users], fold, split, protocol)


def metrics(full, sampled, k: int) -> dict:
    from mgpt.domains.movielens.metrics import summarize

    return {"full": summarize(full, k).as_dict(), "sampled": summarize(sampled, k).as_dict()}


def recbole_rows(root: Path, users: list[str], split, protocol) -> list[dict]:
    """One row per RecBole model: its runs (seeds) on the measured users and on all users."""
    fold = split.fold("test")
    ids = [split.user_ids[u] for u in fold.users]
    picked = [ids.index(u) for u in users]
    rows = []
    for model in MODELS:
        runs = []
        for folder in sorted(root.glob(f"{model}-*")):
            if (folder / "scores.npz").is_file():
                full, sampled = recbole_ranks(folder, split, fold, protocol)
                runs.append({"seed": folder.name.split("-")[-1], **metrics(full[picked], sampled[picked], protocol.k),
                             "all_ndcg": float(metrics(full, sampled, protocol.k)["full"]["ndcg"])})
        if runs:
            rows.append({"row": f"RecBole {model}", "runs": runs})
    return rows


def team_rows(evaluation: dict, users: list[str]) -> list[dict]:
    """The evaluation's rows on ``users``: the retriever and the team from each user's ranks;
    the control and all-users rows as the evaluation computed them."""
    import numpy as np

    k, wanted = evaluation["options"]["count"], set(users)
    seeds = {seed: [x for x in lines if x["user"] in wanted] for seed, lines in evaluation["users"].items() if lines}
    ranks = lambda key: [metrics(np.array([x[f"{key}full_rank"] for x in lines]),  # noqa: E731
                                 np.array([x[f"{key}sampled_rank"] for x in lines]), k) for lines in seeds.values()]
    every = {r["seed"]: r["full"]["ndcg"] for r in evaluation["rows"]["retriever, all users"]}
    retriever = [{**r, "all_ndcg": every.get(int(seed))} for r, seed in zip(ranks("retriever_"), seeds)]
    rows = [{"row": "mgpt retriever alone", "runs": retriever}]
    control = [r for r in evaluation["rows"]["retriever + random picks (control), subset"]
               if r["full"]["users"] == len(users)]
    if control:
        rows.append({"row": "mgpt retriever + random picks (control)", "runs": control})
    rows.append({"row": "mgpt retriever + LLM ranker", "runs": ranks("")})
    explained = {str(r["seed"]) for r in evaluation["rows"]["full team, subset"]}
    full_team = [r for r, seed in zip(ranks(""), seeds) if seed in explained]
    if full_team:
        rows.append({"row": "mgpt full team (with explanations)", "runs": full_team})
    return rows


def cell(runs: list[dict], pick) -> str:
    values = [pick(r) for r in runs if pick(r) is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(rows: list[dict], users: int, k: int) -> str:
    lines = [f"| row | runs | NDCG@{k} | Recall@{k} | MRR | sampled NDCG@{k} | sampled HR@{k} | NDCG@{k}, all users |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        runs = row["runs"]
        parts = [cell(runs, lambda r, p=p, m=m: r[p][m]) for p, m in
                 (("full", "ndcg"), ("full", "recall"), ("full", "mrr"), ("sampled", "ndcg"), ("sampled", "recall"))]
        lines.append(f"| {row['row']} | {len(runs)} | {' | '.join(parts)} | {cell(runs, lambda r: r.get('all_ndcg'))} |")
    return f"{users} users measured\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval", type=Path, required=True, help="mgpt eval recommend's results.json")
    p.add_argument("--recbole", type=Path, required=True, help="bench_recommend.py's OUT/recbole")
    p.add_argument("--out", type=Path, default=Path("runs/bench_recommend_team"))
    args = p.parse_args(argv)

    from mgpt.domains.movielens.data import load_movielens
    from mgpt.domains.movielens.evaluate import Protocol
    from mgpt.domains.movielens.split import leave_one_out

    evaluation = json.loads(args.eval.read_text(encoding="utf-8"))
    options = evaluation["options"]
    protocol = Protocol(k=options["count"], negatives=options["negatives"], seed=options["protocol_seed"])
    users = measured_users(evaluation)
    data = load_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    rows = recbole_rows(args.recbole, users, split, protocol) + team_rows(evaluation, users)
    text = table(rows, len(users), protocol.k)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps({"users": users, "rows": rows, "argv": {
        "eval": str(args.eval), "recbole": str(args.recbole)}}, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
