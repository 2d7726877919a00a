"""The trajectories the retail fidelity benchmark grades (mgpt.domains.retail.fidelity),
mgpt's side only (τ²'s side needs its venv: run benchmarks/bench_retail_fidelity.py)."""

from __future__ import annotations

import pytest

from mgpt.domains.retail import RetailData, RetailDataError, RetailStore, load_tasks
from mgpt.domains.retail.data import locate
from mgpt.domains.retail.fidelity import KINDS, PASSING, build_cases


@pytest.fixture(scope="module")
def retail_data() -> RetailData:
    try:  # fetched once into the real cache, as tests/domains/conftest.py does
        return RetailData(locate())
    except RetailDataError as exc:
        pytest.skip(f"τ²-bench's retail data is not here and could not be fetched: {exc}")


@pytest.mark.slow
def test_the_benchmark_builds_every_kind_and_grades_it_as_expected(retail_data):
    start = RetailStore.from_json(retail_data.db_json())
    tasks = [t for t in load_tasks(retail_data) if t.id in ("0", "2")]  # 2 has communicate_info
    assert tasks[1].evaluation_criteria.communicate_info
    cases = build_cases(tasks, start)
    assert {c["kind"] for c in cases} == set(KINDS)
    for case in cases:
        assert case["ours"] == (case["kind"] in PASSING), (case["task_id"], case["kind"])
        assert case["messages"] and all(m["role"] in ("assistant", "user", "tool") for m in case["messages"])
