"""Customer service on τ²-bench retail: pass^1 of the support team and of the agent alone.

    python3 benchmarks/bench_service.py --out /tmp/bench-service [--model local] [--split test]
        [--limit N] [--trials K] [--max-turns T] [--max-tool-steps S] [--max-tokens M] [--workers W]
        [--customer-model SPEC] [--configs gold,team,single,team-free,single-free]

Each configuration is one ``mgpt eval service`` (:func:`mgpt.workflows.service_eval.run_service_eval`,
in this process) into ``OUT/<config>/``:

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

Prints a markdown table, with the published pass^1 anchors beside it. Every conversation is
in ``OUT/<config>/task-*/`` (transcript, run log, report, ``trajectory.json``); grade them with
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

#: Published pass^1 on τ-bench / τ²-bench retail (the issue's anchors).
ANCHORS = [
    ("τ-bench README", "gpt-4o", 0.604), ("τ-bench README", "claude-3.5-sonnet", 0.692),
    ("τ²-bench leaderboard (user: gpt-4.1)", "gpt-4.1", 0.740),
    ("τ²-bench leaderboard (user: gpt-4.1)", "gpt-4.1-mini", 0.614),
    ("τ²-bench leaderboard (user: gpt-4.1)", "claude-3.7-sonnet", 0.721),
]
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


#: The configurations played by scripted models (no model runs): checks of the harness and the checker.
SCRIPTED = ("gold", "gold-single", "unconfirmed", "unconfirmed-single")


def run_config(name: str, args: argparse.Namespace) -> dict:
    """One configuration's eval; returns its results.json."""
    from mgpt.domains.retail import RetailData, RetailStore
    from mgpt.workflows.service_eval import ServiceEvalOptions, gold_model, run_service_eval

    label, checker, constrained = CONFIGS[name]
    os.environ["MGPT_CONSTRAINED"] = constrained
    data = RetailData.load()
    options = ServiceEvalOptions(
        model="scripted" if name in SCRIPTED else args.model, out=args.out / name, split=args.split, limit=args.limit,
        task_ids=args.task or None, trials=args.trials, workers=args.workers, max_turns=args.max_turns,
        max_tool_steps=args.max_tool_steps, checker=checker, customer_model=args.customer_model,
        max_tokens=args.max_tokens, threads=args.threads, base_url=args.base_url,
    )
    make = None
    if name in SCRIPTED:
        start = RetailStore.from_json(data.db_json())
        confirm = not name.startswith("unconfirmed")
        make = lambda spec, job: gold_model(job.task, start, confirm=confirm)  # noqa: E731

    def progress(item, done: int, total: int) -> None:
        print(f"  {name} [{done}/{total}] task {item.task_id} trial {item.trial}: {'pass' if item.passed else 'fail'}, "
              f"{item.ended}, {item.turns} turns, {item.tool_calls} calls, {item.seconds:.0f} s", file=sys.stderr,
              flush=True)

    result = run_service_eval(options, on_done=progress, make_model=make, data=data)
    return {**result.to_dict(), "config": name, "label": label}


def table(rows: list[dict]) -> str:
    lines = [
        "| configuration | model | tasks × trials | pass^1 | store as expected | state-changing calls made / asked (declined) "
        "| left the store wrong | tool calls | customer turns | s / conversation |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n = r["count"]
        lines.append(
            f"| {r['label']} | {'(scripted)' if r['config'] in SCRIPTED else r['model']} | {r['tasks']} × {r['trials']} "
            f"| {float(r['pass_hat']['1']):.3f} | {r['state_matches']}/{n} "
            f"| {r['writes_done']} / {r['writes_asked']} ({r['writes_declined']}) | {r['wrong_changes']}/{n} "
            f"| {r['tool_calls']} | {r['turns']} | {r['seconds_per_conversation']:.0f} |")
    lines += ["", "Published pass^1 on retail, beside it:", "", "| source | model | pass^1 |", "|---|---|---:|"]
    lines += [f"| {source} | {model} | {score:.3f} |" for source, model, score in ANCHORS]
    return "\n".join(lines)


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
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--configs", default=None, help="comma-separated, from: " + ", ".join(CONFIGS))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # a checkout: mgpt is the root

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
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
