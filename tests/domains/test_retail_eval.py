"""τ²-bench's retail tasks, and grading a conversation as τ²-bench grades it: gold passes,
a perturbed one fails."""

from __future__ import annotations

import pytest

from mgpt.domains.retail import (
    RetailDataError, RetailTools, Trajectory, expected_store, grade, load_tasks, replay_gold, to_tau2_messages,
)
from mgpt.domains.retail.evaluate import said


@pytest.fixture(scope="module")
def tasks(retail_data):
    return {t.id: t for t in load_tasks(retail_data)}


def run(task, start, actions, *, say_info=True):
    """A scripted agent: makes ``actions`` on a copy of ``start``, then says the task's info."""
    store = start.copy()
    trajectory = Trajectory(task_id=task.id)
    tools = RetailTools(store)
    for action in actions:
        trajectory.call(tools, action.name, action.arguments)
    if say_info and task.evaluation_criteria.communicate_info:
        trajectory.say("Here you go: " + ", ".join(task.evaluation_criteria.communicate_info).upper())
    return trajectory, store


def test_splits(retail_data, tasks):
    assert len(tasks) == 114
    assert len(load_tasks(retail_data, "train")) == 74 and len(load_tasks(retail_data, "test")) == 40
    assert {t.id for t in load_tasks(retail_data, "test")} <= set(tasks)
    with pytest.raises(RetailDataError, match="no task split 'dev'"):
        load_tasks(retail_data, "dev")
    assert all(t.evaluation_criteria.reward_basis == ["DB", "COMMUNICATE"] for t in tasks.values())


def test_said_follows_taus_rule():
    assert said("1234.56", ["Your refund is $1,234.56."])
    assert said("Yes", ["well, YES it is"])
    assert not said("1234.56", ["Your refund is $1234.5"])
    assert not said("x", ["   "])


@pytest.mark.parametrize("task_id", ["0", "20", "35", "46"])
def test_gold_passes(tasks, retail_start, task_id):
    """Task 0 exchanges two items; 20 modifies four (τ²'s last-item quirk); 35 and 46 include
    gold calls the service refuses (an unknown email, an unknown order)."""
    task = tasks[task_id]
    trajectory, end = run(task, retail_start, task.evaluation_criteria.actions)
    verdict = grade(task, end, trajectory.agent_messages(), retail_start)
    assert verdict.passed and verdict.state_matches and verdict.missing_info == []
    assert end.digest() != retail_start.digest()


def test_a_skipped_step_fails(tasks, retail_start):
    task = tasks["0"]  # the exchange is the last action
    trajectory, end = run(task, retail_start, task.evaluation_criteria.actions[:-1])
    verdict = grade(task, end, trajectory.agent_messages(), retail_start)
    assert not verdict.passed and not verdict.state_matches


def test_a_wrong_item_fails(tasks, retail_start):
    task = tasks["0"]
    exchange = task.evaluation_criteria.actions[-1]
    args = dict(exchange.arguments, new_item_ids=[exchange.arguments["new_item_ids"][0], "7747408585"])
    tools = RetailTools(retail_start)
    product = tools.get_product_details("4896585277")  # the thermostat: another available one
    other = next(i for i, v in product["variants"].items() if v["available"] and i != args["new_item_ids"][1]
                 and i != exchange.arguments["item_ids"][1])
    args["new_item_ids"][1] = other
    actions = [*task.evaluation_criteria.actions[:-1], exchange.model_copy(update={"arguments": args})]
    trajectory, end = run(task, retail_start, actions)
    assert trajectory.steps[-1].error is False  # the call succeeded: the state is just wrong
    assert not grade(task, end, trajectory.agent_messages(), retail_start).passed


def test_an_extra_cancellation_fails(tasks, retail_start):
    task = tasks["0"]
    trajectory, end = run(task, retail_start, task.evaluation_criteria.actions)
    user = RetailTools(end).get_user_details("yusuf_rossi_9620")
    pending = next(o for o in user["orders"] if RetailTools(end).get_order_details(o)["status"] == "pending")
    reply = trajectory.call(RetailTools(end), "cancel_pending_order", {"order_id": pending, "reason": "no longer needed"})
    assert not reply.error
    assert not grade(task, end, trajectory.agent_messages(), retail_start).passed


def test_unsaid_info_fails(tasks, retail_start):
    task = next(t for t in tasks.values() if t.evaluation_criteria.communicate_info)
    gold = expected_store(task, retail_start)
    trajectory, end = run(task, retail_start, task.evaluation_criteria.actions, say_info=False)
    verdict = grade(task, end, trajectory.agent_messages(), retail_start, expected=gold)
    assert verdict.state_matches and not verdict.passed
    assert verdict.missing_info == task.evaluation_criteria.communicate_info


def test_replay_gold_and_taus_message_format(tasks, retail_start):
    task = tasks["46"]
    trajectory = replay_gold(task, retail_start.copy())
    messages = to_tau2_messages(trajectory)
    tool_calls = [m for m in messages if m.get("tool_calls")]
    replies = [m for m in messages if m["role"] == "tool"]
    assert len(tool_calls) == len(replies) == len(task.evaluation_criteria.actions)
    assert [m["tool_calls"][0]["id"] for m in tool_calls] == [m["id"] for m in replies]
    assert any(m["error"] and m["content"] == "Error: Order not found" for m in replies)
    assert messages[-1] == {"role": "assistant", "content": "; ".join(task.evaluation_criteria.communicate_info)}
    assert Trajectory.model_validate_json(trajectory.model_dump_json()) == trajectory


def test_calls_that_never_reached_the_store_are_not_given_to_tau(retail_start):
    trajectory = Trajectory(task_id="x")
    tools = RetailTools(retail_start.copy())
    trajectory.call(tools, "get_order_details", {"order_id": 2378156})  # not a string: rejected
    trajectory.call(tools, "get_order_details", {"order_id": "#W0000000"})  # reached the store: refused
    messages = to_tau2_messages(trajectory)
    assert trajectory.steps[0].rejected and len(messages) == 2
    assert messages[1]["content"] == "Error: Order not found"


@pytest.mark.slow
def test_every_gold_trajectory_passes(tasks, retail_start):
    """All 114 (about 30 s): benchmarks/bench_retail_fidelity.py also grades them with τ²'s evaluator."""
    failed = []
    for task in tasks.values():
        store = retail_start.copy()
        trajectory = replay_gold(task, store)
        if not grade(task, store, trajectory.agent_messages(), retail_start).passed:
            failed.append(task.id)
    assert failed == []
