"""The support desk's actions on their own: the service's tools as the agent's, the policy
check's rules, and what each turn shows its model."""

from __future__ import annotations

import asyncio

import pytest

from mgpt.actions.base import ActionContext
from mgpt.actions.service import (
    OUT_OF_SCOPE, TRANSFER, AgentReply, AnswerCustomer, CallUnderReview, CheckPolicy, CustomerLeft, SpeakAsCustomer,
    agent_system_prompt, service_tools,
)
from mgpt.agents.message import Message
from mgpt.agents.tools import ToolCall, ToolExchange, ToolResult, Toolbox
from mgpt.domains.retail import WRITE_TOOLS, RetailStore, RetailTools
from mgpt.domains.retail.testing import tiny_store_json
from mgpt.llm.backends.base import ChatMessage
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.testing import TestModel
from mgpt.memory import InMemory


@pytest.fixture
def service() -> RetailTools:
    return RetailTools(RetailStore.from_json(tiny_store_json()))


def test_the_agents_tools_are_the_services_with_its_answers(service):
    tools = service_tools(service)
    assert {t.name for t in tools if t.needs_approval} == WRITE_TOOLS and len(tools) == 15
    box = Toolbox(tools)
    calls = [ToolCall.of("get_order_details", {"order_id": "#W404"}),
             ToolCall.of("cancel_pending_order", {"order_id": "#W2", "reason": "no longer needed"}),
             ToolCall.of("find_user_id_by_email", {"email": "ANN.LEE@example.com"})]
    results = asyncio.run(box.run(calls))
    for call, result in zip(calls, results):  # the same text as RetailTools.call gives
        assert result.content == service.call(call.name, __import__("json").loads(call.arguments)).content
    assert [r.is_error for r in results] == [True, True, False]
    assert results[1].content == "Error: Non-pending order cannot be cancelled"


def exchange(name: str, arguments: dict, content: str, error: bool = False) -> Message:
    call = ToolCall.of(name, arguments)
    return Message(payload=ToolExchange(calls=[call], results=[
        ToolResult(call_id=call.id, name=name, content=content, is_error=error)]), sent_from="SupportAgent")


def said(text: str) -> Message:
    return Message(content=text, sent_from="Customer", cause_by=SpeakAsCustomer)


CANCEL_W1 = CallUnderReview(name="cancel_pending_order", arguments={"order_id": "#W1", "reason": "no longer needed"})


@pytest.mark.parametrize("conversation, request_, problem", [
    ([said("yes")], CANCEL_W1, "not authenticated"),
    ([exchange("find_user_id_by_email", {"email": "x@y"}, "Error: User not found", True), said("yes")], CANCEL_W1,
     "not authenticated"),
    ([exchange("find_user_id_by_email", {"email": "ann.lee@example.com"}, "ann_lee_1"), said("Yes!")], CANCEL_W1, None),
    ([exchange("find_user_id_by_email", {"email": "ann.lee@example.com"}, "ann_lee_1"), said("yes"), said("no, wait")],
     CANCEL_W1, "not confirmed"),
    ([exchange("find_user_id_by_email", {"email": "ann.lee@example.com"}, "ann_lee_1"), said("yesterday it came")],
     CANCEL_W1, "not confirmed"),  # a word boundary: "yesterday" is not a yes
    ([exchange("find_user_id_by_email", {"email": "bob@example.com"}, "bob_kim_2"), said("yes")], CANCEL_W1,
     "not the authenticated customer's (bob_kim_2)"),
    ([exchange("find_user_id_by_email", {"email": "bob@example.com"}, "bob_kim_2"), said("yes")],
     CallUnderReview(name="modify_user_address", arguments={"user_id": "ann_lee_1"}), "not the authenticated"),
    ([exchange("find_user_id_by_email", {"email": "bob@example.com"}, "bob_kim_2"), said("yes")],
     CallUnderReview(name="cancel_pending_order", arguments={"order_id": "#W404"}), None),  # the service refuses it
])
def test_the_policy_check(service, conversation, request_, problem):
    found = CheckPolicy(service).problem(request_, conversation)
    assert (found is None) if problem is None else (problem in (found or "")), found


def run(action, memory: list[Message], *, role: str, replies: list, tools=None):
    model = TestModel(replies)
    action.bind(LLM(model, role=role))
    store = InMemory()
    for m in memory:
        asyncio.run(store.add(m))
    ctx = ActionContext(role_name=role, news=memory[-1:], memory=store, tools=tools)
    return asyncio.run(action.run(ctx)), model


def test_the_agent_sees_its_earlier_tool_turns_and_the_customer_as_the_user():
    earlier = AgentReply(text="You are Ann.", turns=[
        ChatMessage(role="assistant", content="", tool_calls=[ToolCall.of("find_user_id_by_email", {"email": "a"}, id="c1")]),
        ChatMessage(role="tool", content="ann_lee_1", tool_call_id="c1", name="find_user_id_by_email")])
    memory = [said("I am a"), Message(content="You are Ann.", payload=earlier, sent_from="SupportAgent"), said("thanks")]
    reply, model = run(AnswerCustomer("POLICY"), memory, role="SupportAgent", replies=["You are welcome."])
    assert reply.content == "You are welcome." and isinstance(reply.payload, AgentReply)
    request = model.requests[0][1]
    assert [m.role for m in request] == ["system", "assistant", "user", "assistant", "tool", "assistant", "user"]
    assert request[0].content == agent_system_prompt("POLICY") and "<policy>\nPOLICY\n</policy>" in request[0].content


@pytest.mark.parametrize("text, ends", [("bye ###STOP###", True), (TRANSFER, True), (OUT_OF_SCOPE, True),
                                        ("I want a refund", False)])
def test_the_customer_ends_with_a_stop_token(text, ends):
    memory = [Message(content="Hi! How can I help you today?", sent_from="SupportAgent", cause_by=AnswerCustomer)]
    reply, model = run(SpeakAsCustomer("You want a refund."), memory, role="Customer", replies=[text])
    assert (reply.cause_by is CustomerLeft) == ends
    system, greeting = model.requests[0][1]
    assert "<scenario>\nYou want a refund.\n</scenario>" in system.content and greeting.role == "user"


def test_max_tool_steps_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        AnswerCustomer("P", max_tool_steps=0)
    assert AnswerCustomer("P", max_tool_steps=3).max_tool_steps == 3 and AnswerCustomer("P").max_tool_steps == 12
