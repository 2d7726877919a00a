"""The task runner: throughput from 1 to 2 workers, per-task overhead, the budget server.

    python benchmarks/bench_batch.py                 # local processes and a local Ray cluster
    python benchmarks/bench_batch.py --no-ray        # local processes only
    python benchmarks/bench_batch.py --json out.json

Measures, on this machine:

- throughput of two workloads with 1 and then 2 workers, on local processes and on a Ray
  cluster of two nodes (one CPU each) that the script starts on 127.0.0.1 and stops:
  ``replays``, the golden transcripts run as a batch (real runs: each builds its project's
  venv and runs its tests in the sandbox: CPU-bound), and ``waits``, tasks that wait like
  model calls (4 calls of 0.5 s each: what a run on a hosted model mostly does);
- the runner's own cost per task: batches of empty tasks, one worker, after a warm-up;
  local processes against Ray, in ms per task;
- the budget server: hold + charge cycles per second (each one fsync'd twice), from 4
  workers at once over the real link, and the time of one cycle for a worker alone.

Prints a Markdown table per measure (docs/benchmarks.md "Batches").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from mgpt.agents.runner import RunnerOptions, Task, run_tasks
from mgpt.agents.runner.hub import Hub, HubLink, HubServer, PoolBudget
from mgpt.workflows.batch import BatchItem, BatchSettings, run_batch

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
STEPS = "mgpt.agents.runner.testing:steps_task"


def _fresh(root: Path, name: str) -> Path:
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def replays(root: Path, where: dict, workers: int) -> tuple[float, int]:
    """(seconds, runs passed) for the golden transcripts as one batch."""
    items = [BatchItem(idea=None, model=f"replay:{p}") for p in sorted(GOLDEN.glob("*.jsonl"))]
    started = time.perf_counter()
    result = run_batch(items, BatchSettings(), RunnerOptions(out=_fresh(root, f"replays-{workers}"),
                                                             workers=workers, **where))
    return time.perf_counter() - started, result.passed


def waits(root: Path, where: dict, workers: int, tasks: int = 8) -> tuple[float, int]:
    """(seconds, tasks passed) for tasks of 4 calls that wait 0.5 s each."""
    batch = [Task(id=f"w{i}", fn=STEPS, args={"steps": 4, "seconds": 0.5, "cost": 0.0}) for i in range(tasks)]
    started = time.perf_counter()
    result = run_tasks(batch, RunnerOptions(out=_fresh(root, f"waits-{workers}"), workers=workers, **where))
    return time.perf_counter() - started, result.passed


def overhead_ms(root: Path, where: dict, tasks: int = 20) -> float:
    """The runner's time per empty task, one worker at a time (after a warm-up batch)."""
    empty = [Task(id=f"e{i}", fn=STEPS, args={"steps": 0}) for i in range(tasks)]
    run_tasks(empty[:2], RunnerOptions(out=_fresh(root, "warm"), workers=1, **where))
    started = time.perf_counter()
    run_tasks(empty, RunnerOptions(out=_fresh(root, "empty"), workers=1, **where))
    return (time.perf_counter() - started) / tasks * 1000


def hub_rate(root: Path, clients: int = 4, cycles: int = 200) -> float:
    """Hold + charge cycles per second the budget server answers, ``clients`` at once."""
    records = _fresh(root, "hub") / ".mgpt-batch"
    records.mkdir(parents=True)
    hub = Hub(records, records.parent, {f"t{i}": None for i in range(clients)}, max_cost=1e9)
    server = HubServer(hub)
    for i in range(clients):
        hub.begin(f"t{i}", 1)

    def spend(i: int) -> None:
        budget = PoolBudget(HubLink(server.address, server.authkey), f"t{i}", 1, max_cost=1e9, max_tokens=None)
        for n in range(cycles):
            hold = budget.reserve("R", tokens=10, cost=1e-6, call=f"A#{n}")
            budget.charge("R", prompt_tokens=10, completion_tokens=0, cost=1e-6, hold=hold)
        budget.link.close()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    server.close()
    hub.close()
    return clients * cycles / seconds


def measure(root: Path, where: dict, label: str) -> dict:
    out: dict = {"where": label}
    for workers in (1, 2):
        out[f"replays_{workers}"] = replays(root, where, workers)
        out[f"waits_{workers}"] = waits(root, where, workers)
        print(f"# {label}, {workers} worker(s): replays {out[f'replays_{workers}'][0]:.1f} s, "
              f"waits {out[f'waits_{workers}'][0]:.1f} s", flush=True)
    out["overhead_ms"] = overhead_ms(root, where)
    print(f"# {label}: {out['overhead_ms']:.0f} ms per empty task", flush=True)
    return out


def table(results: list[dict]) -> str:
    runs = len(list(GOLDEN.glob("*.jsonl")))
    lines = ["| where | workload | 1 worker | 2 workers | speed-up |", "|---|---|---|---|---|"]
    for r in results:
        for name, count in (("replays", runs), ("waits", 8)):
            one, two = r[f"{name}_1"][0], r[f"{name}_2"][0]
            what = f"{count} golden replays (sandboxed tests)" if name == "replays" else "8 tasks of 4 × 0.5 s waits"
            lines.append(f"| {r['where']} | {what} | {one:.1f} s ({count / one * 60:.1f}/min) | "
                         f"{two:.1f} s ({count / two * 60:.1f}/min) | {one / two:.2f}x |")
    lines += ["", "| where | runner time per empty task (1 worker, 20 tasks) |", "|---|---|"]
    lines += [f"| {r['where']} | {r['overhead_ms']:.0f} ms |" for r in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-ray", action="store_true", help="local processes only")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="mgpt-bench-batch-"))
    try:
        results = [measure(root, {}, "local processes")]
        if not args.no_ray:
            from mgpt.agents.runner.testing import LocalRayCluster

            started = time.perf_counter()
            with LocalRayCluster(nodes=2, cpus=1) as cluster:
                print(f"# Ray: 2 nodes up in {time.perf_counter() - started:.1f} s", flush=True)
                results.append(measure(root, {"ray": cluster.address}, "Ray, 2 nodes × 1 CPU"))
        rate = hub_rate(root)
        alone = hub_rate(root, clients=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(results))
    print(f"\nbudget server: {rate:.0f} hold+charge cycles/s (4 workers at once, each record fsync'd); "
          f"{1000 / alone:.1f} ms a cycle for one worker alone")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "hub_cycles_per_s": rate,
                                         "hub_ms_per_cycle_alone": 1000 / alone}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
