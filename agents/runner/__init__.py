"""One task runner under every batch and evaluation: local processes or a Ray cluster.

A task is picklable data plus a function named by its import path; the runner gives each
task its own process and folder, brings its result and transcript back to the driver,
records every outcome durably, retries a task whose worker died (continuing its
transcript), and keeps the whole batch within one budget::

    from mgpt.agents.runner import RunnerOptions, Task, run_tasks

    def grade(ctx):                      # in my_eval.py, importable by the workers
        ...                              # ctx.args, ctx.workdir, ctx.resume, ctx.budget
        return {"ok": True, "score": 0.9}

    tasks = [Task(id=f"case-{i}", fn="my_eval:grade", args={"case": i}) for i in range(100)]
    result = run_tasks(tasks, RunnerOptions(out=Path("runs/eval"), workers=4))   # or ray="auto"
    result.passed, result.failed, result.spend.cost, [o.result for o in result.outcomes]

The rules a task function keeps: its ``args`` and its return value are JSON data; it
writes only inside ``ctx.workdir``; if it can be continued, it appends its durable
records to ``Task.journal`` (default ``.mgpt/transcript.jsonl``, what every mgpt run
writes) and continues from them when ``ctx.resume`` is true (``run_company(...,
resume=ctx.resume)`` does); every model call goes through ``ctx.budget`` (give it to the
run as its budget); and it raises :class:`~mgpt.agents.errors.BudgetExceeded` when the
budget stopped it (that task is then left for ``--resume``, not counted as failed).

The parts: :mod:`.tasks` (the data), :mod:`.driver` (scheduling, retries, the ledger),
:mod:`.hub` (the shared budget and journals), :mod:`.worker` (one attempt),
:mod:`.local` and :mod:`.ray_backend` (where attempts run), :mod:`.testing` (task
functions for tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "BatchError": "tasks", "BatchResult": "tasks", "RunnerOptions": "tasks", "Task": "tasks",
    "TaskContext": "tasks", "TaskOutcome": "tasks", "TaskUpdate": "tasks", "run_tasks": "driver",
    "AttemptSuperseded": "hub", "PoolBudget": "hub",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.agents.runner.driver import run_tasks
    from mgpt.agents.runner.hub import AttemptSuperseded, PoolBudget
    from mgpt.agents.runner.tasks import (
        BatchError, BatchResult, RunnerOptions, Task, TaskContext, TaskOutcome, TaskUpdate,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
