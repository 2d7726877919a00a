"""bench_service's own logic on the tiny retail data: a configuration runs through the real
eval, and the table carries the figures and the published anchors."""

from __future__ import annotations

import argparse
import sys

import pytest
from testpaths import BENCH

from mgpt.domains.retail import RetailData
from mgpt.domains.retail.testing import tiny_data


@pytest.fixture
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_service
    finally:
        sys.path.remove(str(BENCH))
    return bench_service


def test_the_gold_configuration_passes_every_task_and_the_table_shows_it(bench, tmp_path, monkeypatch):
    tiny = tiny_data(tmp_path / "data")
    monkeypatch.setattr(RetailData, "load", classmethod(lambda cls, **kw: tiny))
    monkeypatch.setenv("MGPT_CONSTRAINED", "1")
    args = argparse.Namespace(model="local", out=tmp_path / "out", split="base", limit=None, task=[], trials=1,
                              workers=1, max_turns=4, max_tool_steps=None, customer_model=None, max_tokens=None,
                              threads=None, base_url=None)
    row = bench.run_config("gold", args)
    assert row["pass_hat"] == {"1": 1.0} and row["count"] == 2 and row["writes_declined"] == 0
    text = bench.table([row])
    assert "| reference conversations (scripted gold calls) | (scripted) | 2 × 1 | 1.000 | 2/2 |" in text
    assert "| τ²-bench leaderboard (user: gpt-4.1) | gpt-4.1 | 0.740 |" in text
