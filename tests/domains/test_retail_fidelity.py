"""The trajectories the retail fidelity benchmark grades (mgpt.domains.retail.fidelity),
mgpt's side only (τ²'s side needs its venv: run benchmarks/bench_retail_fidelity.py)."""

from __future__ import annotations

import pytest

from mgpt.domains.retail import RetailData, RetailDataError, RetailStore, load_tasks
from mgpt.domains.retail.data import locate
from mgpt.domains.retail.fidelity import KINDS, PASSING, REAL, build_cases, real_cases


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


@pytest.mark.slow
def test_real_conversations_are_read_back_and_graded_by_us(retail_data, tmp_path):
    """The eval's trajectory.json files, replayed on a fresh store and graded (here the
    scripted gold conversations of two test tasks: both pass)."""
    from mgpt.workflows.service_eval import ServiceEvalOptions, gold_model, run_service_eval

    start = RetailStore.from_json(retail_data.db_json())
    run_service_eval(ServiceEvalOptions(model="gold", out=tmp_path / "ev", limit=2), data=retail_data,
                     make_model=lambda spec, job: gold_model(job.task, start))
    paths = sorted(tmp_path.rglob("trajectory.json"))
    cases = real_cases(paths, {t.id: t for t in load_tasks(retail_data)}, start)
    assert [c["kind"] for c in cases] == [REAL, REAL] and all(c["ours"] for c in cases)
    assert all(m["role"] in ("assistant", "user", "tool") for c in cases for m in c["messages"])
