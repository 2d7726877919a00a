"""The task runner on local processes: outcomes, retries, resume, the shared budget, the
hub's records, and bad input refused. (The same promises on Ray: test_runner_ray.py.)"""

from __future__ import annotations

import json
import threading

import pytest

from mgpt.agents.budget import Budget
from mgpt.agents.errors import BudgetExceeded
from mgpt.agents.runner import BatchError, RunnerOptions, Task, run_tasks
from mgpt.agents.runner.hub import Hub, HubLink, HubServer, PoolBudget
from mgpt.agents.runner.worker import pack, unpack

from runner_cases import (
    STEPS, check_budget_holds, check_kill_worker_mid_task, check_resume_after_driver_killed, journal_steps,
)


def test_a_batch_runs_every_task_and_records_each_outcome(tmp_path):
    tasks = [Task(id="a", fn=STEPS, args={"steps": 2}), Task(id="b", fn=STEPS, args={"steps": 1, "ok": False}),
             Task(id="c", fn=STEPS, args={"fail": "no luck"})]
    result = run_tasks(tasks, RunnerOptions(out=tmp_path / "out", workers=2))
    a, b, c = result.outcomes
    assert [o.id for o in result.outcomes] == ["a", "b", "c"]
    assert a.ok and a.result["steps"] == 2 and a.transcript == tmp_path / "out" / "a" / ".mgpt" / "transcript.jsonl"
    assert b.status == "done" and not b.ok
    assert c.status == "failed" and "RuntimeError: no luck" in c.error
    assert (result.passed, result.failed, result.stopped, result.lost) == (1, 2, 0, 0)
    assert result.complete and "2 local process" in result.workers
    assert result.spend.calls == 2 + 1 + 3 and a.spend.calls == 2  # the steps' calls, per task and in all
    lines = (tmp_path / "out" / ".mgpt-batch" / "ledger.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["tasks"].keys() == {"a", "b", "c"}
    assert sorted(json.loads(line)["id"] for line in lines[1:]) == ["a", "b", "c"]


def test_kill_9_of_a_local_worker_mid_task_is_retried_and_continues(tmp_path):
    check_kill_worker_mid_task(tmp_path / "out", {})


@pytest.mark.slow
def test_resume_after_the_driver_is_killed_skips_finished_tasks(tmp_path):
    check_resume_after_driver_killed(tmp_path / "out", {}, tmp_path)


def test_the_shared_budget_holds_with_4_local_workers(tmp_path):
    check_budget_holds(tmp_path / "out", {})


def test_a_worker_that_keeps_dying_is_given_up_then_resumed(tmp_path):
    tasks = [Task(id="dies", fn=STEPS, args={"steps": 3, "die_at": {"step": 2, "attempts": [1, 2]}})]
    out = tmp_path / "out"
    result = run_tasks(tasks, RunnerOptions(out=out, retries=1))
    (lost,) = result.outcomes
    assert lost.status == "lost" and lost.attempts == 2 and "died" in lost.error and not result.complete
    assert [s["step"] for s in journal_steps(out, "dies")] == [1]
    # Each death left its step's call in flight: counted at its worst case (it may have been billed).
    assert result.spend.cost == pytest.approx(0.01 * 3)
    again = run_tasks(tasks, RunnerOptions(out=out, resume=True))
    assert again.outcomes[0].ok and again.outcomes[0].result["replayed"] == 1
    assert again.spend.cost == pytest.approx(0.01 * 3 + 0.01 * 2)  # two new calls; the replayed one is free


def test_bad_batches_are_refused_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(BatchError, match="unique"):
        run_tasks([Task(id="a", fn=STEPS), Task(id="a", fn=STEPS)], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="folder name"):
        run_tasks([Task(id="../x", fn=STEPS)], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="package.module:function"):
        run_tasks([Task(id="a", fn="no_colon")], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="cannot import"):
        run_tasks([Task(id="a", fn="mgpt.agents.runner.testing:nothing_here")], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="inside the task's folder"):
        run_tasks([Task(id="a", fn=STEPS, journal="../escape.jsonl")], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="nothing to resume"):
        run_tasks([Task(id="a", fn=STEPS)], RunnerOptions(out=out, resume=True))
    assert not out.exists()
    run_tasks([Task(id="a", fn=STEPS, args={"steps": 1})], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="--resume"):
        run_tasks([Task(id="a", fn=STEPS, args={"steps": 1})], RunnerOptions(out=out))
    with pytest.raises(BatchError, match="tasks differ"):
        run_tasks([Task(id="a", fn=STEPS, args={"steps": 2})], RunnerOptions(out=out, resume=True))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(BatchError, match="not empty"):
        run_tasks([Task(id="a", fn=STEPS)], RunnerOptions(out=tmp_path / "full"))
    with pytest.raises(BatchError, match="Ray"):
        run_tasks([Task(id="b", fn=STEPS)], RunnerOptions(out=tmp_path / "r", ray="ray://head:10001"))


def _hub(tmp_path, **limits):
    records = tmp_path / "out" / ".mgpt-batch"
    records.mkdir(parents=True, exist_ok=True)
    return Hub(records, tmp_path / "out", {"t": ".mgpt/transcript.jsonl"}, **limits)


def test_the_hub_charges_a_call_once_and_counts_holds_lost_with_a_killed_driver(tmp_path):
    hub = _hub(tmp_path, max_cost=0.05)
    hub.begin("t", 1)
    _, first = hub.reserve("t", 1, "Engineer", "WriteCode#1", 100, 0.02, "")
    hub.charge("t", 1, first, "Engineer", {"prompt_tokens": 50, "completion_tokens": 10, "cost": 0.01}, None)
    assert hub.reserve("t", 1, "Engineer", "WriteCode#1", 100, 0.02, "") == ("ok", 0)  # a replay: free
    _, open_hold = hub.reserve("t", 1, "Engineer", "WriteCode#2", 100, 0.02, "")
    assert hub.reserve("t", 1, "QaEngineer", "WriteTests#1", 100, 0.03, "")[0] == "refused"  # 0.01 + 0.02 held
    assert hub.reserve("t", 2, "Engineer", "WriteCode#3", 1, 0.0, "")[0] == "stale"  # not the current attempt
    hub.close()  # the driver dies with a hold open...
    again = _hub(tmp_path, max_cost=0.05)  # ...and the next one counts it as spent
    assert again.spend().cost == pytest.approx(0.03) and again.spend("t").calls == 2
    again.begin("t", 2)
    assert again.reserve("t", 2, "Engineer", "WriteCode#1", 100, 0.02, "") == ("ok", 0)  # still charged once
    assert again.reserve("t", 2, "Engineer", "WriteCode#2", 100, 0.01, "")[0] == "ok"
    assert again.reserve("t", 2, "Engineer", "WriteCode#3", 100, 0.02, "")[0] == "refused"
    again.close()


def test_pool_budgets_in_threads_never_overshoot_together(tmp_path):
    """Many holders at once over the real link: the total stays within the limit."""
    hub = _hub(tmp_path, max_cost=0.505)
    server = HubServer(hub)
    hub.begin("t", 1)
    refused = []

    def spend(n: int) -> None:
        budget = PoolBudget(HubLink(server.address, server.authkey), "t", 1, max_cost=0.505, max_tokens=None)
        for i in range(40):
            try:
                hold = budget.reserve("R", tokens=1, cost=0.01, call=f"A{n}#{i}")
            except BudgetExceeded:
                refused.append(n)
                return
            budget.charge("R", prompt_tokens=1, completion_tokens=0, cost=0.01, hold=hold)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.close()
    assert hub.spend().cost == pytest.approx(0.5) and len(refused) == 4
    hub.close()


def test_a_packed_task_folder_comes_back_whole_without_caches(tmp_path):
    root = tmp_path / "w"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    (root / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (root / ".mgpt" / "venv" / "bin").mkdir(parents=True)
    (root / ".mgpt" / "transcript.jsonl").write_text("{}\n")
    dest = tmp_path / "back"
    dest.mkdir()
    (dest / "stale.txt").write_text("from before")
    unpack(pack(root), dest)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [".mgpt/transcript.jsonl", "pkg/a.py"]


def test_a_budget_without_a_pool_ignores_the_call_name():
    budget = Budget(max_cost=0.01)
    hold = budget.reserve("R", cost=0.01, call="X#1")
    with pytest.raises(BudgetExceeded):
        budget.reserve("R", cost=0.001, call="X#1")
    budget.release(hold)


def test_no_cluster_at_the_ray_address_is_one_error_and_leaves_no_folder(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'mgpt[cluster]')")
    if Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("a Ray cluster runs on this machine: --ray auto would find it")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(BatchError, match="no Ray cluster at 'auto'.*ray start --head"):
        run_tasks([Task(id="a", fn=STEPS)], RunnerOptions(out=tmp_path / "out", ray="auto"))
    assert not (tmp_path / "out").exists()
