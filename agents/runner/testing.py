"""Task functions for testing batches: they spend, journal and die as asked, in no time.

``mgpt.agents.runner.testing:steps_task`` behaves like a run with ``steps`` model calls:
each call holds its worst case on the batch's budget, takes ``seconds``, is appended to
the task's journal (fsync'd, as a transcript records a call) and then charged. A resumed
attempt replays the steps its journal holds (held and charged again under the same call
names, which the shared budget must not count twice) and makes only the rest. ``die_at``
kills the worker with SIGKILL at a step, on the attempts listed, before the step is
recorded: the way a machine dies mid-task.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from mgpt.agents.durable import append_line, complete_lines, repair_tail
from mgpt.agents.runner.tasks import TaskContext


def steps_task(ctx: TaskContext) -> dict[str, Any]:
    """args: ``steps`` (calls), ``cost`` (USD each, default 0.01), ``tokens`` (each, 10),
    ``seconds`` (each, 0), ``die_at`` ({"step": k, "attempts": [1]}), ``ok`` (the result's,
    default true), ``fail`` (raise this message instead of returning)."""
    args = ctx.args
    steps, cost, tokens = int(args.get("steps", 3)), float(args.get("cost", 0.01)), int(args.get("tokens", 10))
    journal = ctx.journal or ctx.workdir / ".mgpt" / "transcript.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    if ctx.resume:
        repair_tail(journal)  # a line torn by the kill is not a step done
    done = _recorded(journal) if ctx.resume else []
    die = args.get("die_at") or {}
    with journal.open("ab" if ctx.resume else "wb") as f:
        for step in range(1, steps + 1):
            hold = ctx.budget.reserve("Tester", tokens=tokens, cost=cost, why="a test step", call=f"Step#{step}")
            if step > len(done):
                if step == die.get("step") and ctx.attempt in die.get("attempts", [1]):
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(float(args.get("seconds", 0)))
                append_line(f, json.dumps({"step": step, "pid": os.getpid(), "attempt": ctx.attempt}))
            ctx.budget.charge("Tester", prompt_tokens=tokens, completion_tokens=0, cost=cost, hold=hold)
    if args.get("fail"):
        raise RuntimeError(str(args["fail"]))
    records = _recorded(journal)
    return {"ok": bool(args.get("ok", True)), "steps": len(records), "replayed": len(done),
            "pids": sorted({r["pid"] for r in records}), "attempts": sorted({r["attempt"] for r in records})}


def _recorded(journal) -> list[dict[str, Any]]:
    if not journal.is_file():
        return []
    lines, _ = complete_lines(journal.read_text(encoding="utf-8"))
    return [json.loads(line) for line in lines if line.strip()]
