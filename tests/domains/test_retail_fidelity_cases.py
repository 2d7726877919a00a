"""The fidelity benchmark's trajectories, mgpt's side only (τ²'s side needs its venv: run
benchmarks/bench_retail_fidelity.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mgpt.domains.retail import load_tasks

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_the_benchmark_builds_every_kind_and_grades_it_as_expected(retail_data, retail_start):
    sys.path.insert(0, str(BENCH))
    try:
        import bench_retail_fidelity as bench
    finally:
        sys.path.remove(str(BENCH))
    tasks = [t for t in load_tasks(retail_data) if t.id in ("0", "2")]  # 2 has communicate_info
    assert tasks[1].evaluation_criteria.communicate_info
    cases = bench.build_cases(tasks, retail_start)
    assert {c["kind"] for c in cases} == set(bench.KINDS)
    for case in cases:
        assert case["ours"] == (case["kind"] in bench.PASSING), (case["task_id"], case["kind"])
        assert case["messages"] and all(m["role"] in ("assistant", "user", "tool") for m in case["messages"])
