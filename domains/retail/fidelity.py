"""Trajectories to check a grader against: a retail task's gold actions run through mgpt's
tools, and perturbed versions that must fail, each graded by mgpt's evaluator.

:func:`build_cases` gives, per task, the ``gold`` trajectory; ``refused_calls`` (the gold
actions, then calls the service must refuse: unknown ids, a wrong zip, each rule broken
once; they change nothing, so it passes too); and the perturbations that must fail:
``wrong_item`` (an item of the first item-changing call swapped), ``skipped_step`` (the
last state-changing call left out), ``extra_cancellation`` (a pending order the gold
actions leave alone cancelled) and ``unsaid_info`` (the ``communicate_info`` message left
out). ``benchmarks/bench_retail_fidelity.py`` grades the same cases with τ²-bench's own
evaluator and compares the verdicts.
"""

from __future__ import annotations

import json

__all__ = ["KINDS", "PASSING", "build_cases"]

KINDS = ("gold", "refused_calls", "wrong_item", "skipped_step", "extra_cancellation", "unsaid_info")
PASSING = ("gold", "refused_calls")


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
