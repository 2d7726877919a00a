"""benchmarks/bench_recommend_team.py puts RecBole's saved scores and an evaluation's team
results on the same users."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_recommend_team.py"


def fake_recbole_run(folder: Path, split, scores: np.ndarray) -> None:
    """A RecBole run as bench_recommend.py saves it: users and items as RecBole's tokens, in
    RecBole's own order (here: reversed, with its padding item first), one row per user."""
    users, items = list(reversed(split.user_ids)), ["[PAD]", *reversed(split.item_ids)]
    matrix = np.zeros((len(users), len(items)), dtype=np.float32)
    for r, u in enumerate(users):
        matrix[r, 1:] = scores[split.user_index(u)][::-1]
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "scores.npz", scores=matrix, users=np.array(users), items=np.array(items))


@pytest.mark.slow
def test_recbole_and_the_team_on_the_same_users(movielens, movielens_split, tmp_path):
    from mgpt.domains.movielens.evaluate import user_ranks
    from mgpt.domains.movielens.metrics import summarize
    from mgpt.domains.movielens.retrievers import Popularity

    split, fold = movielens_split, movielens_split.fold("test")
    every = np.arange(len(split.user_ids))
    scores = Popularity().fit(fold).scores(every)
    fake_recbole_run(tmp_path / "recbole" / "Pop-0", split, scores)
    full, sampled = user_ranks(lambda users: scores[users], fold, split)
    ids = [split.user_ids[u] for u in fold.users]
    picked = ["1", "13", "196"]
    lines = [{"user": u, "full_rank": 1, "sampled_rank": 1, "retriever_full_rank": int(full[ids.index(u)]),
              "retriever_sampled_rank": int(sampled[ids.index(u)])} for u in picked]
    metrics = {"ndcg": 0.05, "recall": 0.1, "mrr": 0.04, "mrr_at_k": 0.03, "k": 10, "users": 943}
    evaluation = {"options": {"count": 10, "negatives": 99, "protocol_seed": 0},
                  "users": {"0": lines + [{**lines[0], "user": "2"}], "1": lines},
                  "rows": {"retriever, all users": [{"seed": 0, "full": metrics, "sampled": metrics}],
                           "retriever + random picks (control), subset": [], "full team, subset": []}}
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    env = {**os.environ, "MGPT_HOME": str(movielens.folder.parent.parent), "MGPT_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(BENCH), "--eval", str(tmp_path / "eval.json"), "--recbole",
                          str(tmp_path / "recbole"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["users"] == picked  # measured by both seeds, in id order
    rows = {row["row"]: row["runs"] for row in result["rows"]}
    assert list(rows) == ["RecBole Pop", "mgpt retriever alone", "mgpt retriever + LLM ranker"]
    # RecBole's matrix, re-ordered back to mgpt's ids, ranks each user as the retriever it came from.
    [pop] = rows["RecBole Pop"]
    assert pop["full"]["ndcg"] == pytest.approx(rows["mgpt retriever alone"][0]["full"]["ndcg"])
    assert pop["sampled"]["recall"] == pytest.approx(rows["mgpt retriever alone"][1]["sampled"]["recall"])
    assert pop["all_ndcg"] == pytest.approx(summarize(full, 10).ndcg)
    assert [r["full"]["ndcg"] for r in rows["mgpt retriever + LLM ranker"]] == [1.0, 1.0]
    table = (tmp_path / "out" / "table.md").read_text()
    assert table.startswith("3 users measured") and "| mgpt retriever alone | 2 |" in table and "| 0.0500 |" in table
