"""The support team in scripted conversations on the tiny store: one per state-changing tool,
the policy violations and bad input that must change nothing, how a conversation ends, and a
replayed transcript."""

from __future__ import annotations

import asyncio
import json

import pytest

from mgpt.actions.service import GREETING, STOP, TRANSFER_MESSAGE, HandedToHuman
from mgpt.agents.tools import ToolCall
from mgpt.domains.retail import RetailStore, ToolStep, replay_trajectory, to_tau2_messages
from mgpt.domains.retail.testing import TINY_POLICY, tiny_store_json
from mgpt.llm.backends.replay import ReplayModel
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.harness import RunOptions
from mgpt.workflows.service import ServiceOptions, converse

ANN = "ann.lee@example.com"
ADDRESS = {"address1": "9 Elm St", "address2": "Apt 2", "city": "Austin", "state": "TX", "country": "USA", "zip": "73301"}


@pytest.fixture
def store() -> RetailStore:
    return RetailStore.from_json(tiny_store_json())


def call(name: str, **arguments) -> list[ToolCall]:
    return [ToolCall.of(name, arguments)]


def talk(tmp_path, store, customer: list[str], agent: list, *, checker: bool = True, max_rounds: int = 20,
         name: str = "ws"):
    model = TestModel({("Customer", "SpeakAsCustomer"): customer, ("SupportAgent", "AnswerCustomer"): agent})
    options = RunOptions(workspace=tmp_path / name, sandbox="none", history=False, max_rounds=max_rounds)
    return asyncio.run(converse("You are Ann Lee.", store, TINY_POLICY, model=model, options=options,
                                service=ServiceOptions(checker=checker), task_id="t"))


def tool_steps(conversation) -> list[ToolStep]:
    return [s for s in conversation.trajectory.steps if isinstance(s, ToolStep)]


def results(conversation) -> dict[str, str]:
    """Every tool call's result by tool name (the last one), declined and rejected ones included."""
    found = {}
    for message in conversation.messages:
        exchange = message.payload
        if getattr(exchange, "calls", None) is not None:
            for c, r in zip(exchange.calls, exchange.results):
                found[c.name] = r.content
    return found


# --- one scripted conversation per state-changing tool --------------------------------------

WRITES = [
    ("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"},
     lambda s: s["orders"]["#W1"]["status"] == "cancelled"),
    ("modify_pending_order_address", {"order_id": "#W1", **ADDRESS},
     lambda s: s["orders"]["#W1"]["address"]["city"] == "Austin"),
    ("modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "paypal_1"},
     lambda s: s["orders"]["#W1"]["payment_history"][-2]["payment_method_id"] == "paypal_1"),
    ("modify_pending_order_items", {"order_id": "#W1", "item_ids": ["2000000001"], "new_item_ids": ["2000000002"],
                                    "payment_method_id": "credit_card_1"},
     lambda s: s["orders"]["#W1"]["status"] == "pending (item modified)"),
    ("return_delivered_order_items", {"order_id": "#W2", "item_ids": ["3000000002"], "payment_method_id": "paypal_1"},
     lambda s: s["orders"]["#W2"]["status"] == "return requested"),
    ("exchange_delivered_order_items", {"order_id": "#W2", "item_ids": ["3000000002"],
                                        "new_item_ids": ["3000000003"], "payment_method_id": "paypal_1"},
     lambda s: s["orders"]["#W2"]["status"] == "exchange requested"),
    ("modify_user_address", {"user_id": "ann_lee_1", **ADDRESS},
     lambda s: s["users"]["ann_lee_1"]["address"]["city"] == "Austin"),
]


@pytest.mark.parametrize("tool, arguments, changed", WRITES, ids=[w[0] for w in WRITES])
def test_a_confirmed_request_of_the_authenticated_customer_is_done(tmp_path, store, tool, arguments, changed):
    conversation = talk(tmp_path, store, [f"Hi, I am {ANN}. Please do it.", "yes", f"Thanks! {STOP}"], [
        call("find_user_id_by_email", email=ANN),
        f"I will call {tool} with {json.dumps(arguments)}. Shall I go ahead (yes)?",
        call(tool, **arguments),
        "Done.",
    ])
    assert conversation.ended == "customer" and conversation.turns == 3
    steps = tool_steps(conversation)
    assert [s.name for s in steps] == ["find_user_id_by_email", tool] and not steps[1].error
    assert changed(store.snapshot())
    # what was said, in order, greeting first
    said = [(s.role, s.text) for s in conversation.trajectory.steps if s.kind == "said"]
    assert said[0] == ("assistant", GREETING) and said[-1] == ("user", f"Thanks! {STOP}")


# --- violations and bad input: the service's (or the checker's) error, and nothing changes ---

VIOLATIONS = {
    "no yes from the customer": (
        ["I am ann.lee@example.com, cancel #W1", "hmm, wait", STOP],
        [call("find_user_id_by_email", email=ANN), call("cancel_pending_order", order_id="#W1", reason="no longer needed"),
         "Sorry.", "Bye."],
        "cancel_pending_order", "Error: the reviewer declined this call: the customer has not confirmed"),
    "another customer's order": (
        ["I am ann.lee@example.com, cancel #W5", "yes", STOP],
        [call("find_user_id_by_email", email=ANN), "Cancel #W5?", call("cancel_pending_order", order_id="#W5",
                                                                           reason="no longer needed"), "Sorry."],
        "cancel_pending_order", "Error: the reviewer declined this call: this is not the authenticated customer's"),
    "not authenticated": (
        ["cancel #W1 please, yes", STOP],
        [call("cancel_pending_order", order_id="#W1", reason="no longer needed"), "Sorry."],
        "cancel_pending_order", "Error: the reviewer declined this call: the customer is not authenticated"),
    "a wrong zip": (
        ["I am Ann Lee, zip 99999. Cancel #W1, yes.", STOP],
        [call("find_user_id_by_name_zip", first_name="Ann", last_name="Lee", zip="99999"),
         call("cancel_pending_order", order_id="#W1", reason="no longer needed"), "Sorry."],
        "find_user_id_by_name_zip", "Error: User not found"),
    "a delivered order cancelled": (
        ["I am ann.lee@example.com, cancel #W2", "yes", STOP],
        [call("find_user_id_by_email", email=ANN), "Cancel #W2?",
         call("cancel_pending_order", order_id="#W2", reason="no longer needed"), "Sorry."],
        "cancel_pending_order", "Error: Non-pending order cannot be cancelled"),
    "an unknown order id": (
        ["I am ann.lee@example.com, cancel #W999", "yes", STOP],
        [call("find_user_id_by_email", email=ANN), call("get_order_details", order_id="#W999"), "Cancel #W999?",
         call("cancel_pending_order", order_id="#W999", reason="no longer needed"), "Sorry."],
        "cancel_pending_order", "Error: Order not found"),
    "malformed arguments": (
        ["I am ann.lee@example.com, return the mug of #W2", "yes", STOP],
        [call("find_user_id_by_email", email=ANN), "Return it?",
         call("return_delivered_order_items", order_id="#W2", item_ids="3000000002", payment_method_id="paypal_1"),
         "Sorry."],
        "return_delivered_order_items", "Error: invalid arguments for return_delivered_order_items: item_ids"),
    "a reason the service does not take": (
        ["I am ann.lee@example.com, cancel #W1", "yes", STOP],
        [call("find_user_id_by_email", email=ANN), "Cancel?",
         call("cancel_pending_order", order_id="#W1", reason="found it cheaper"), "Sorry."],
        "cancel_pending_order", "Error: Invalid reason"),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_a_request_against_the_policy_or_with_bad_input_changes_nothing(tmp_path, store, case):
    customer, agent, tool, error = VIOLATIONS[case]
    before = store.state_hash()
    conversation = talk(tmp_path, store, customer, agent)
    assert results(conversation)[tool].startswith(error), results(conversation)[tool]
    assert store.state_hash() == before
    assert conversation.ended == "customer"
    # the trajectory keeps only the calls that reached the store: a declined or malformed call did not
    reached = [s.name for s in tool_steps(conversation)]
    if "declined" in error or "invalid arguments" in error:
        assert tool not in reached
    rebuilt = RetailStore.from_json(tiny_store_json())
    replay_trajectory(conversation.trajectory, rebuilt)
    assert rebuilt.state_hash() == before


def test_without_the_checker_an_unconfirmed_change_goes_through(tmp_path, store):
    """What the checker adds: the same unconfirmed cancellation, with the agent alone, is made."""
    customer, agent, _, _ = VIOLATIONS["no yes from the customer"]
    conversation = talk(tmp_path, store, customer, agent, checker=False)
    assert store.snapshot()["orders"]["#W1"]["status"] == "cancelled"
    assert [s.name for s in tool_steps(conversation)] == ["find_user_id_by_email", "cancel_pending_order"]
    assert not any(m.sent_from == "PolicyChecker" for m in conversation.messages)


def test_the_checkers_decisions_are_on_the_bus(tmp_path, store):
    conversation = talk(tmp_path, store, *WRITE_AND_DECLINE)
    verdicts = [m.payload for m in conversation.messages if m.sent_from == "PolicyChecker"]
    assert [v.approved for v in verdicts] == [False, True]
    assert "not confirmed" in verdicts[0].reason and verdicts[1].call.startswith("cancel_pending_order(")


WRITE_AND_DECLINE = (
    [f"I am {ANN}; cancel #W1", "yes", STOP],
    [call("find_user_id_by_email", email=ANN), call("cancel_pending_order", order_id="#W1", reason="no longer needed"),
     "May I cancel #W1 (yes)?", call("cancel_pending_order", order_id="#W1", reason="no longer needed"), "Done."],
)


# --- how a conversation ends --------------------------------------------------------------


def test_a_transfer_to_a_human_ends_the_conversation(tmp_path, store):
    conversation = talk(tmp_path, store, ["I want a human."],  # the customer is not asked again
                        [call("transfer_to_human_agents", summary="wants a human")])
    assert conversation.ended == "transfer"
    last = conversation.messages[-1]
    assert last.cause_by is HandedToHuman and last.content == TRANSFER_MESSAGE


def test_a_customer_who_never_stops_is_stopped_by_the_round_limit(tmp_path, store):
    conversation = talk(tmp_path, store, ["hello?"] * 10, ["How can I help?"] * 10, max_rounds=4)
    assert conversation.ended == "max_rounds" and conversation.turns == 2


def test_a_turn_makes_at_most_max_tool_steps_calls(tmp_path, store):
    lookups = [call("get_order_details", order_id="#W1")] * 20
    conversation = talk(tmp_path, store, ["where is #W1?", STOP], [*lookups[:12], "It is pending."])
    assert len(tool_steps(conversation)) == 12
    events = [json.loads(line) for line in conversation.log.read_text().splitlines()]
    assert any(e["kind"] == "bound" and "max_tool_steps=12" in e["detail"] for e in events)


def test_a_model_that_fails_ends_the_conversation_with_what_was_done_kept(tmp_path, store):
    conversation = talk(tmp_path, store, [f"I am {ANN}, cancel #W1 please", "yes"], [
        call("find_user_id_by_email", email=ANN), "Cancel #W1?",
        call("cancel_pending_order", order_id="#W1", reason="no longer needed"), "Done."])  # the customer runs dry
    assert conversation.ended == "error" and "no scripted answer left" in conversation.detail
    assert store.snapshot()["orders"]["#W1"]["status"] == "cancelled"


# --- records: the transcript replays the same conversation ----------------------------------


def test_the_transcript_replays_the_same_conversation_offline(tmp_path, store):
    live = talk(tmp_path, store, *WRITE_AND_DECLINE)
    fresh = RetailStore.from_json(tiny_store_json())
    options = RunOptions(workspace=tmp_path / "again", sandbox="none", history=False, max_rounds=20)
    replayed = asyncio.run(converse("You are Ann Lee.", fresh, TINY_POLICY, model=ReplayModel(live.transcript),
                                    options=options, task_id="t"))
    assert replayed.trajectory == live.trajectory and replayed.ended == live.ended
    # a replay answers tool calls from the transcript: the store is left alone, and the
    # trajectory rebuilds the live end state
    assert fresh.state_hash() == RetailStore.from_json(tiny_store_json()).state_hash()
    replay_trajectory(replayed.trajectory, fresh)
    assert fresh.state_hash() == store.state_hash()
    messages = to_tau2_messages(replayed.trajectory)
    assert [m["tool_calls"][0]["name"] for m in messages if m.get("tool_calls")] == [
        "find_user_id_by_email", "cancel_pending_order"]  # the declined call never reached the store
