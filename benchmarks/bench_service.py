"""Customer service on τ²-bench retail: pass^1 of the support team and of the agent alone.

    python3 benchmarks/bench_service.py --out /tmp/bench-service [--model local] [--split test]
        [--limit N] [--trials K] [--max-turns T] [--max-tool-steps S] [--max-tokens M] [--workers W]
        [--customer-model SPEC] [--configs gold,team,single,team-free,single-free] [--data DIR]

Each configuration is one ``mgpt eval service`` (:func:`mgpt.workflows.service_eval.run_service_eval`)
into ``OUT/<config>/``:

- ``gold``: the reference conversations (:func:`~mgpt.workflows.service_eval.gold_model`:
  the gold calls, the customer agreeing) through the whole harness, team and checker
  included: a check that the harness and the grader let a correct conversation pass (1.0);
  ``gold-single`` the same with the agent alone;
- ``unconfirmed`` / ``unconfirmed-single``: the reference calls, but the customer never says
  yes: every change is made against the policy; what the checker stops (asked by
  ``--configs``; the default runs ``gold`` and the model's configurations);
- ``team``: SupportAgent + PolicyChecker on ``--model``; ``single``: the SupportAgent alone;
- ``*-free``: the same with ``MGPT_CONSTRAINED=0`` (a local model's tool calls decoded without
  the grammar; for a hosted model the two are the same and ``-free`` is left out).

The model's configurations run on the task runner with ``--workers`` (each conversation in
its own process), else one after another; the scripted ones run in this process. Prints a
markdown table with the published pass^1 anchors beside it. Every conversation is in
``OUT/<config>/task-*/`` (transcript, run log, report, ``trajectory.json``); grade them with
τ²-bench's own evaluator with ``benchmarks/bench_retail_fidelity.py --trajectories OUT/*``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

#: name -> (label, the checker on, MGPT_CONSTRAINED)
CONFIGS = {
    "gold": ("reference conversations (scripted gold calls)", True, "1"),
    "gold-single": ("reference conversations, SupportAgent alone", False, "1"),
    "unconfirmed": ("reference calls, the customer never says yes", True, "1"),
    "unconfirmed-single": ("reference calls, never a yes, SupportAgent alone", False, "1"),
    "team": ("SupportAgent + PolicyChecker", True, "1"),
    "single": ("SupportAgent alone", False, "1"),
    "team-free": ("SupportAgent + PolicyChecker, no grammar", True, "0"),
    "single-free": ("SupportAgent alone, no grammar", False, "0"),
}
#: The configurations played by scripted models (no model runs).
SCRIPTED = ("gold", "gold-single", "unconfirmed", "unconfirmed-single")


def run_config(name: str, args: argparse.Namespace) -> dict:
    """One configuration's eval; returns its results.json."""
    from mgpt.agents.runner import RunnerOptions
    from mgpt.domains.retail import RetailStore
    from mgpt.workflows.service_eval import ServiceEvalOptions, gold_model, run_service_eval

    _, checker, constrained = CONFIGS[name]
    os.environ["MGPT_CONSTRAINED"] = constrained  # read when each model is built (workers inherit it)
    out = args.out / name
    options = ServiceEvalOptions(
        model="scripted" if name in SCRIPTED else args.model, out=out, split=args.split, limit=args.limit,
        task_ids=args.task or None, trials=args.trials, max_turns=args.max_turns, max_tool_steps=args.max_tool_steps,
        checker=checker, customer_model=args.customer_model, max_tokens=args.max_tokens, threads=args.threads,
        base_url=args.base_url, data_dir=args.data,
    )
    make, runner = None, None
    if name in SCRIPTED:
        start = RetailStore.from_json(options.load_data().db_json())
        confirm = not name.startswith("unconfirmed")
        make = lambda spec, job: gold_model(job.task, start, confirm=confirm)  # noqa: E731
    elif args.workers:
        runner = RunnerOptions(out=out, workers=args.workers)

    def progress(item, done: int, total: int) -> None:
        print(f"  {name} [{done}/{total}] task {item.task_id} trial {item.trial}: {'pass' if item.passed else 'fail'}, "
              f"{item.ended}, {item.turns} turns, {item.tool_calls} calls, {item.seconds:.0f} s", file=sys.stderr,
              flush=True)

    result = run_service_eval(options, on_done=progress, make_model=make, runner=runner)
    return {**result.to_dict(), "config": name, **({"model": "(scripted)"} if name in SCRIPTED else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a new folder: one subfolder per configuration")
    parser.add_argument("--model", default="local")
    parser.add_argument("--customer-model", default=None)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--task", action="append", default=[])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--max-tool-steps", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="the model's conversations on the task runner")
    parser.add_argument("--data", type=Path, default=None, help="a retail data folder instead of τ²-bench's")
    parser.add_argument("--configs", default=None, help="comma-separated, from: " + ", ".join(CONFIGS))
    args = parser.parse_args()
    from mgpt.workflows.service_eval import markdown_table

    local = args.model.partition(":")[0] in ("local", "hf")
    default = [n for n in CONFIGS if n not in SCRIPTED[1:] and (local or not n.endswith("-free"))]
    names = args.configs.split(",") if args.configs else default
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    began = time.strftime("%Y-%m-%d %H:%M %Z")
    rows = []
    for name in names:
        t0 = time.perf_counter()
        rows.append(run_config(name, args))
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(f"customer service, τ²-bench retail {args.split}: began {began}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores; max {args.max_turns} customer turns, {args.max_tool_steps or 12} tool calls a turn, "
          f"{args.max_tokens or 'default'} tokens a call\n")
    print(markdown_table([(CONFIGS[r["config"]][0], r) for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
