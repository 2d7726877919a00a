"""Grading a support conversation the way τ²-bench grades retail: end state and what was said.

A task passes when both hold (τ²-bench's default retail reward, DB × COMMUNICATE):

- **the store's end state** equals the state that the task's gold actions produce, replayed
  on a fresh copy of the same starting store (gold actions that the service refuses change
  nothing, as in τ²-bench);
- **every** ``communicate_info`` **string** appears in one of the agent's messages to the
  customer, compared as τ²-bench compares it: lower case, commas dropped from the message.

A conversation is kept as a :class:`Trajectory`: the tool calls with the service's replies,
and what each side said. :func:`to_tau2_messages` writes it in τ²-bench's message format, so
τ²-bench's own evaluator can grade the same conversation (``benchmarks/bench_retail_fidelity.py``).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence, Union

from pydantic import BaseModel, Field

from .store import RetailStore
from .tasks import Task
from .tools import RetailTools, ToolReply

__all__ = [
    "Said", "ToolStep", "Trajectory", "Verdict", "expected_store", "grade", "replay_gold", "said", "to_tau2_messages",
]


class ToolStep(BaseModel):
    """One tool call the agent made, and the service's reply."""

    kind: Literal["tool"] = "tool"
    call_id: str
    name: str
    arguments: dict[str, Any]
    content: str
    error: bool = False
    #: The arguments did not fit the tool, so the call never reached the store.
    rejected: bool = False


class Said(BaseModel):
    """A message in the conversation: the agent's to the customer, or the customer's."""

    kind: Literal["said"] = "said"
    role: Literal["assistant", "user"]
    text: str


class Trajectory(BaseModel):
    """A support conversation on one task, in order."""

    task_id: str
    steps: list[Union[ToolStep, Said]] = Field(default_factory=list)

    def call(self, tools: RetailTools, name: str, arguments: dict[str, Any]) -> ToolReply:
        """Run a tool call on ``tools`` and record it with the reply."""
        reply = tools.call(name, arguments)
        call_id = f"call_{sum(isinstance(s, ToolStep) for s in self.steps)}"
        self.steps.append(ToolStep(call_id=call_id, name=name, arguments=arguments,
                                   content=reply.content, error=reply.error, rejected=reply.rejected))
        return reply

    def say(self, text: str, role: Literal["assistant", "user"] = "assistant") -> None:
        self.steps.append(Said(role=role, text=text))

    def agent_messages(self) -> list[str]:
        """What the agent said to the customer, in order."""
        return [s.text for s in self.steps if isinstance(s, Said) and s.role == "assistant"]


class Verdict(BaseModel):
    """How a conversation did on its task."""

    task_id: str
    passed: bool
    #: The store ended in the state the gold actions produce.
    state_matches: bool
    #: The ``communicate_info`` strings the agent never said.
    missing_info: list[str]


def replay_gold(task: Task, store: RetailStore) -> Trajectory:
    """Run the task's gold actions on ``store`` (changing it), recorded as a trajectory: the
    reference conversation's tool calls, then one message saying every ``communicate_info``."""
    trajectory = Trajectory(task_id=task.id)
    tools = RetailTools(store)
    for action in task.evaluation_criteria.actions or []:
        trajectory.call(tools, action.name, action.arguments)
    info = task.evaluation_criteria.communicate_info or []
    if info:
        trajectory.say("; ".join(info))
    return trajectory


def expected_store(task: Task, start: RetailStore) -> RetailStore:
    """A copy of ``start`` with the task's gold actions applied: the state a correct
    conversation leaves behind."""
    gold = start.copy()
    replay_gold(task, gold)
    return gold


def said(info: str, messages: Sequence[str]) -> bool:
    """Whether ``info`` appears in one of ``messages`` (τ²-bench's rule: lower case, and the
    message's commas dropped, so '1,234.5' says '1234.5')."""
    wanted = info.lower()
    return any(message.strip() and wanted in message.lower().replace(",", "") for message in messages)


def grade(
    task: Task, end: RetailStore, agent_messages: Sequence[str], start: RetailStore,
    expected: RetailStore | None = None,
) -> Verdict:
    """Grade a conversation that left the store in ``end``, having started from ``start``, in
    which the agent said ``agent_messages`` to the customer. ``expected`` is the gold end
    state when already known (:func:`expected_store`); otherwise it is replayed from ``start``."""
    criteria = task.evaluation_criteria
    state_matches = True
    if "DB" in criteria.reward_basis:
        expected = expected_store(task, start) if expected is None else expected
        state_matches = end.digest() == expected.digest()
    missing = []
    if "COMMUNICATE" in criteria.reward_basis:
        missing = [info for info in criteria.communicate_info or [] if not said(info, agent_messages)]
    return Verdict(task_id=task.id, passed=state_matches and not missing, state_matches=state_matches,
                   missing_info=missing)


def to_tau2_messages(trajectory: Trajectory) -> list[dict[str, Any]]:
    """The conversation as τ²-bench messages (JSON dicts of its ``AssistantMessage``,
    ``UserMessage`` and ``ToolMessage``): each tool call an assistant message with one
    ``tool_calls`` entry, followed by the tool's reply.

    Calls whose arguments were rejected before reaching the store are left out: τ²-bench's
    tools would run them unchecked, while mgpt's service never saw them, so τ²-bench grades
    the calls that mgpt's store actually served."""
    messages: list[dict[str, Any]] = []
    for step in trajectory.steps:
        if isinstance(step, Said):
            messages.append({"role": step.role, "content": step.text})
            continue
        if step.rejected:
            continue
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": step.call_id, "name": step.name, "arguments": step.arguments, "requestor": "assistant"}]})
        messages.append({"role": "tool", "id": step.call_id, "content": step.content, "requestor": "assistant",
                         "error": step.error})
    return messages
