"""benchmarks/bench_recommend.py runs end to end on mgpt's fast retrievers (RecBole skipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_recommend.py"


@pytest.mark.slow
def test_bench_selects_on_valid_and_reports_test(movielens, tmp_path):
    env = {**os.environ, "MGPT_HOME": str(movielens.folder.parent.parent), "MGPT_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(BENCH), "--skip-recbole", "--families", "pop", "itemknn",
                          "--seeds", "0", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    knn = results["valid"]["itemknn"]
    assert knn["retriever"] == "itemknn" and knn["settings"]["k"] in (20, 50, 100, 200, 400)
    labels = [row["by"] for row in results["rows"]]
    assert labels == ["mgpt itemknn, RecBole's settings (k=100)", "mgpt pop", "mgpt itemknn",
                      "mgpt pop, refit on train+valid", "mgpt itemknn, refit on train+valid"]
    # RecBole 1.2.1's own ItemKNN (k=100) scores 0.0629 / 0.1145 / 0.0473 on this split's test items.
    same = results["rows"][0]["runs"][0]["full"]
    assert (round(same["ndcg"], 4), round(same["recall"], 4), round(same["mrr_at_k"], 4)) == (0.0629, 0.1145, 0.0473)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| **mgpt itemknn** (default) | 1 |" in table
    assert all(0 < row["runs"][0]["full"]["ndcg"] < 0.2 for row in results["rows"])
