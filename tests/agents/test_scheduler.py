"""The dependency scheduler: launches in plan order, within the limit, through cycles, and a
failure cancels no sibling's finished work."""

from __future__ import annotations

import asyncio
import random

import pytest

from mgpt.agents.scheduler import Launch, run_all, run_graph


class Probe:
    """Jobs that sleep a while and record when they ran and how many ran at once."""

    def __init__(self, delays: dict[str, float] | None = None, fail: set[str] = frozenset()):
        self.delays = delays or {}
        self.fail = fail
        self.now = 0
        self.most = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self.launches: dict[str, Launch] = {}

    async def __call__(self, job: Launch[str]) -> str:
        self.started.append(job.key)
        self.launches[job.key] = job
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.delays.get(job.key, 0.01))
            if job.key in self.fail:
                raise RuntimeError(f"{job.key} failed")
            self.finished.append(job.key)
            return job.key.upper()
        finally:
            self.now -= 1


def run(coro, timeout: float = 10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_dependencies_first_and_results_in_plan_order():
    probe = Probe({"a": 0.05, "b": 0.01, "c": 0.01})
    out = run(run_graph(["a", "b", "c", "d"], {"c": ["a"], "d": ["c", "b"]}, probe, limit=4))
    assert list(out) == ["a", "b", "c", "d"] and out["d"] == "D"
    assert probe.started[:2] == ["a", "b"]  # both ready at once, launched in plan order
    assert probe.finished.index("a") < probe.started.index("c")
    assert probe.launches["d"].after == ("a", "b", "c")  # what it waited for, transitively, in plan order
    assert probe.launches["b"].after == () and not any(l.broken for l in probe.launches.values())


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_concurrency_limit_holds(limit):
    rng = random.Random(limit)
    keys = [f"f{i}" for i in range(12)]
    probe = Probe({k: rng.uniform(0.001, 0.02) for k in keys})
    needs = {"f5": ["f0"], "f9": ["f5", "f1"]}
    out = run(run_graph(keys, needs, probe, limit=limit))
    assert len(out) == 12 and probe.most == limit
    if limit == 1:  # one at a time is the plan order (it is a dependency order)
        assert probe.started == keys


def test_a_cyclic_import_graph_falls_back_to_plan_order_and_never_deadlocks():
    probe = Probe()
    needs = {"a": ["c"], "b": ["a"], "c": ["b"], "d": ["a"], "e": []}
    out = run(run_graph(["a", "b", "c", "d", "e"], needs, probe, limit=2))
    assert set(out) == {"a", "b", "c", "d", "e"}
    # e is free and goes first; then nothing can start by the rules: the cycle's first job
    # in the plan is started anyway, waiting only for what is done.
    assert probe.started[0] == "e" and probe.started[1] == "a"
    assert probe.launches["a"].broken and probe.launches["a"].after == ()
    assert not probe.launches["b"].broken and probe.launches["b"].after == ("a",)
    assert probe.launches["c"].after == ("a", "b")
    # A graph that is all cycle, with itself as a dependency, at a limit of one.
    probe = Probe()
    out = run(run_graph(["x", "y"], {"x": ["x", "y"], "y": ["x"]}, probe, limit=1))
    assert probe.started == ["x", "y"] and probe.launches["x"].broken


def test_a_failing_job_cancels_none_of_its_siblings_finished_work():
    probe = Probe({"a": 0.01, "b": 0.3, "c": 0.15, "d": 0.01}, fail={"c"})
    with pytest.raises(RuntimeError, match="c failed"):
        run(run_graph(["a", "b", "c", "d", "e"], {"d": ["c"], "e": ["a"]}, probe, limit=3))
    # b was in flight when c failed: it finished, not cancelled. d needed c: never started.
    assert "b" in probe.finished and "a" in probe.finished
    assert "d" not in probe.started
    # e became ready when a finished, before c failed: it ran to the end too.
    assert "e" in probe.finished


def test_the_first_failure_in_plan_order_is_raised():
    probe = Probe({"a": 0.05, "b": 0.01}, fail={"a", "b"})
    with pytest.raises(RuntimeError, match="a failed"):  # b failed first in time
        run(run_all(["a", "b"], probe, limit=2))


def test_cancelling_the_graph_cancels_the_jobs_in_flight():
    probe = Probe({"a": 5.0, "b": 5.0})

    async def main():
        task = asyncio.ensure_future(run_all(["a", "b", "c"], probe, limit=2))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert probe.started == ["a", "b"] and probe.finished == [] and probe.now == 0


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        run(run_all(["a"], Probe(), limit=0))
