"""The task runner on a real Ray cluster on this machine: a head and a worker node on
127.0.0.1 (one CPU each, no dashboard), started by this module and stopped, every process
by pid, when it ends. Skipped where Ray is not installed (pip install 'mgpt[cluster]')."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from mgpt.agents.runner import RunnerOptions, Task, run_tasks
from mgpt.llm.backends.replay import Transcript
from mgpt.workflows.batch import BatchItem, BatchSettings, run_batch

from runner_cases import (
    STEPS, check_budget_holds, check_kill_worker_mid_task, check_resume_after_driver_killed, journal_steps, pid_of,
    wait_for,
)
from testpaths import GOLDEN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="Ray is not installed (pip install 'mgpt[cluster]')"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the test cluster finds its processes in /proc"),
]

SECRETS = ("OPENAI_API_KEY", "MGPT_API_KEY", "MGPT_MODEL", "MGPT_BASE_URL", "OPENAI_BASE_URL", "MGPT_CONFIG")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from mgpt.agents.runner.testing import LocalRayCluster

    home = tmp_path_factory.mktemp("ray_mgpt_home")
    wheels = Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt").expanduser() / "wheels"
    if wheels.is_dir():
        (home / "wheels").symlink_to(wheels, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(MGPT_HOME=str(home), MGPT_OFFLINE="1", MGPT_THREADS="1", OMP_NUM_THREADS="1",
               XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("ray_xdg")))
    if shutil.which("bwrap") is None:
        env["MGPT_SANDBOX"] = "none"
    with LocalRayCluster(nodes=2, cpus=1, env=env) as running:
        yield running
    assert not running.pids(), "a Ray process of the test cluster is still running"


def _project(root: Path) -> dict[str, bytes]:
    """The generated project: every file but mgpt's records and the git history."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in (".mgpt", ".git")}


def test_replayed_runs_on_ray_give_the_same_projects_as_local_runs(cluster, tmp_path):
    items = [BatchItem(idea=None, model=f"replay:{p}") for p in sorted(GOLDEN.glob("*.jsonl"))]
    local = run_batch(items, BatchSettings(), RunnerOptions(out=tmp_path / "local", workers=2))
    on_ray = run_batch(items, BatchSettings(), RunnerOptions(out=tmp_path / "ray", ray=cluster.address))
    assert local.passed == on_ray.passed == len(items) >= 4
    assert "Ray: 2 node(s)" in on_ray.workers
    for here, there in zip(local.outcomes, on_ray.outcomes):
        assert here.id == there.id and there.worker.startswith("node ")
        assert _project(there.workdir) == _project(here.workdir) and len(_project(here.workdir)) >= 8
        assert there.result == here.result  # tests, calls, tokens, cost: the same runs
        assert [c.response for c in Transcript.load(there.transcript).calls] == \
               [c.response for c in Transcript.load(here.transcript).calls]
    assert on_ray.spend.cost == pytest.approx(local.spend.cost) and on_ray.spend.cost > 0


def test_kill_9_of_a_ray_worker_mid_task_is_retried_and_continues(cluster, tmp_path):
    check_kill_worker_mid_task(tmp_path / "out", {"ray": cluster.address})


def test_resume_after_the_driver_is_killed_skips_finished_tasks_on_ray(cluster, tmp_path):
    check_resume_after_driver_killed(tmp_path / "out", {"ray": cluster.address}, tmp_path)


def test_the_shared_budget_holds_with_4_workers_on_ray(cluster, tmp_path):
    check_budget_holds(tmp_path / "out", {"ray": cluster.address}, seconds=0.5)


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_dead_node_has_its_task_retried_on_another(cluster, tmp_path):
    """Last (it takes the worker node down): kill -9 of a node (its raylet and every
    process under it) mid-task."""
    head = cluster.raylets()[0]
    out = tmp_path / "out"
    tasks = [Task(id=f"t{i}", fn=STEPS, args={"steps": 6, "seconds": 0.5}) for i in range(2)]
    killed: list[str] = []

    def kill_node(task: str, pid: int) -> None:
        raylet = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if raylet == head:
            return  # the head's node carries the driver's connection: take the other one down
        wait_for(lambda: len(journal_steps(out, task)) >= 2, what=f"two steps of {task}")
        for victim in [raylet, *_children(raylet)]:  # the node and every process on it, as a machine dies
            os.kill(victim, signal.SIGKILL)
        killed.append(task)

    def on_update(update) -> None:
        if update.status == "running" and update.attempt == 1:
            threading.Thread(target=kill_node, args=(update.id, pid_of(update.worker)), daemon=True).start()

    result = run_tasks(tasks, RunnerOptions(out=out, ray=cluster.address, on_update=on_update))
    assert len(killed) == 1, "no task ran on the worker node"
    victim = next(o for o in result.outcomes if o.id == killed[0])
    assert victim.ok and victim.attempts == 2 and victim.result["replayed"] >= 2
    assert [s["step"] for s in journal_steps(out, victim.id)] == [1, 2, 3, 4, 5, 6]
    assert result.complete and result.passed == 2
