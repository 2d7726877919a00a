"""The runner's promises, checked the same way on local processes and on a Ray cluster.

Each ``check_*`` takes the batch folder and ``where`` (``{}`` for local processes,
``{"ray": ADDRESS}`` for a cluster); ``tests/agents/test_runner.py`` and
``test_runner_ray.py`` call them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from mgpt.agents.runner import RunnerOptions, Task, run_tasks

STEPS = "mgpt.agents.runner.testing:steps_task"


def journal_steps(out: Path, task: str) -> list[dict]:
    path = out / task / ".mgpt" / "transcript.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def pid_of(worker: str) -> int:
    return int(worker.rsplit("pid ", 1)[1])


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def check_kill_worker_mid_task(out: Path, where: dict) -> None:
    """kill -9 of a worker mid-task: the task is retried, continues its journal, completes."""
    tasks = [Task(id="victim", fn=STEPS, args={"steps": 6, "seconds": 0.4}),
             Task(id="other", fn=STEPS, args={"steps": 2, "seconds": 0.1})]
    killed: list[int] = []

    def kill_when_two_steps_done(pid: int) -> None:
        wait_for(lambda: len(journal_steps(out, "victim")) >= 2, what="two steps of the victim")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def on_update(update) -> None:
        if update.id == "victim" and update.status == "running" and update.attempt == 1:
            threading.Thread(target=kill_when_two_steps_done, args=(pid_of(update.worker),), daemon=True).start()

    result = run_tasks(tasks, RunnerOptions(out=out, workers=2, on_update=on_update, **where))
    victim, other = result.outcomes
    assert killed, "the victim's worker was never killed"
    assert victim.status == "done" and victim.attempts == 2, victim
    assert victim.result["steps"] == 6 and victim.result["replayed"] >= 2, victim.result
    assert victim.result["attempts"] == [1, 2]  # steps made by both attempts: continued, not redone
    assert [s["step"] for s in journal_steps(out, "victim")] == [1, 2, 3, 4, 5, 6]
    assert other.ok and other.attempts == 1
    assert result.complete and result.passed == 2


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mgpt.agents.runner import RunnerOptions, Task, run_tasks

    if __name__ == "__main__":
        tasks = [Task(id=f"t{i}", fn="%s", args={"steps": 2 if i == 0 else 6, "seconds": 0.3})
                 for i in range(4)]
        run_tasks(tasks, RunnerOptions(out=Path(sys.argv[1]), workers=2, ray=sys.argv[2] or None))
""") % STEPS


def _ledger_outcomes(out: Path) -> list[dict]:
    ledger = out / ".mgpt-batch" / "ledger.jsonl"
    if not ledger.is_file():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()[1:] if line.endswith("}")]


def check_resume_after_driver_killed(out: Path, where: dict, script_dir: Path) -> None:
    """kill -9 of the driver, then ``--resume``: finished tasks are skipped, the one cut off
    continues its journal, everything completes once."""
    script = script_dir / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(out), where.get("ray", "")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _ledger_outcomes(out) or driver.poll() is not None, timeout=120, what="a finished task")
    finally:
        driver.kill()
        _, err = driver.communicate()
    finished = {r["id"] for r in _ledger_outcomes(out)}
    assert finished and len(finished) < 4, (finished, err.decode()[-2000:])
    if not where:  # local workers die with their driver: none is left writing into a task
        cut = [s["pid"] for t in ("t1", "t2", "t3") if t not in finished for s in journal_steps(out, t)]
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in cut), timeout=10,
                 what="the dead driver's workers to die")
    updates = []
    result = run_tasks([Task(id=f"t{i}", fn=STEPS, args={"steps": 2 if i == 0 else 6, "seconds": 0.3})
                        for i in range(4)],
                       RunnerOptions(out=out, workers=2, resume=True, on_update=updates.append, **where))
    assert {u.id for u in updates if u.status == "skipped"} == finished
    assert {o.id for o in result.outcomes if o.skipped} == finished
    assert result.complete and result.passed == 4
    rerun = [o for o in result.outcomes if not o.skipped]
    assert any(o.result["replayed"] >= 1 for o in rerun), [o.result for o in rerun]  # continued, not redone
    for o in result.outcomes:
        assert [s["step"] for s in journal_steps(out, o.id)] == list(range(1, o.result["steps"] + 1))


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def check_budget_holds(out: Path, where: dict, seconds: float = 0.2) -> None:
    """Four workers spend from one budget: the batch never overshoots it; a rerun with a
    larger one finishes, replayed calls charged once."""
    tasks = [Task(id=f"t{i}", fn=STEPS, args={"steps": 5, "seconds": seconds, "cost": 0.01})
             for i in range(8)]
    running: set[str] = set()
    most = [0]

    def on_update(update) -> None:
        if update.status == "running":
            running.add(update.id)
            most[0] = max(most[0], len(running))
        elif update.outcome is not None:
            running.discard(update.id)

    budget = 0.13
    result = run_tasks(tasks, RunnerOptions(out=out, workers=4, max_cost=budget, on_update=on_update, **where))
    made = sum(len(journal_steps(out, t.id)) for t in tasks)
    assert result.spend.cost <= budget + 1e-9 and made * 0.01 <= budget + 1e-9, (result.spend, made)
    assert made >= 9, made  # the budget was used, not refused early
    assert result.stopped >= 1 and not result.complete
    assert most[0] >= 3, f"at most {most[0]} tasks ran at once with 4 workers"
    again = run_tasks(tasks, RunnerOptions(out=out, workers=4, max_cost=1.0, resume=True, **where))
    assert again.complete and again.passed == 8
    assert abs(again.spend.cost - 0.40) < 1e-9, again.spend  # 40 calls, each charged once
