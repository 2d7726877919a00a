"""Customer service: a support team answering a customer on the retail store, one conversation.

The team (:func:`support_team`) is a :class:`~mgpt.roles.service.SupportAgent` holding the
store's policy and the retail service's tools and, unless asked not to, a
:class:`~mgpt.roles.service.PolicyChecker` that reviews each state-changing call before it
runs. :func:`converse` puts it in front of a simulated :class:`~mgpt.roles.service.Customer`
driven by a scenario, in a run of its own: a workspace with the run log, the transcript of
every model call (replayable: ``replay:WS/.mgpt/transcript.jsonl`` plays the same
conversation again, offline) and the HTML report.

The conversation is bounded: the customer ends it with a stop token, a transfer to a human
ends it, and otherwise it stops after ``options.max_rounds`` rounds (one message each).

It is the SOP ``service``::

    mgpt run --sop service "task 5" -w ticket5          # τ²-bench retail task 5, graded
    mgpt run --sop service "You want to cancel order #W2378156; you are Yusuf Rossi, zip 19122" -w t1

(``-w``'s ``store.sqlite`` is the store the team works on: made from τ²-bench's ``db.json``
when the run starts.) ``mgpt eval service`` runs it on every task of a split
(:mod:`mgpt.workflows.service_eval`), and ``mgpt service`` puts the same team in front of a
person in the terminal (:mod:`mgpt.workflows.service_desk`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from mgpt.actions.service import (
    GREETING, AgentReply, AnswerCustomer, CustomerLeft, HandedToHuman, is_customer, was_declined,
)
from mgpt.agents.budget import Spend
from mgpt.agents.errors import MgptError
from mgpt.agents.message import Message
from mgpt.agents.runlog import Event
from mgpt.agents.team import RunResult, Team
from mgpt.agents.tools import ToolExchange
from mgpt.domains.retail import (
    RetailData, RetailDataError, RetailStore, RetailTools, Said, Task, ToolStep, Trajectory, grade, load_tasks,
    reaches_store, replay_trajectory,
)
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.replay import EndRecord
from mgpt.roles.base import Role
from mgpt.roles.service import Customer, PolicyChecker, SupportAgent
from mgpt.workflows.harness import RunOptions, RunSession, prepare_workspace

__all__ = [
    "STORE_FILE", "Conversation", "ServiceOptions", "ServiceResult", "converse", "ending", "open_store", "run_service",
    "support_team", "trajectory_of",
]

#: The store a ``service`` run works on, in its workspace.
STORE_FILE = "store.sqlite"

#: How a conversation ended: the customer's stop token, a transfer to a human, the round
#: limit, the budget, or an error (a model that failed, a prompt too long for the model...).
Ending = Literal["customer", "transfer", "max_rounds", "budget", "error"]


@dataclass
class ServiceOptions:
    """The support team's own options (besides the run's :class:`RunOptions`)."""

    #: a :class:`PolicyChecker` reviews each state-changing call (False: the agent alone)
    checker: bool = True
    #: more instructions for the agent, after the policy
    instructions: str = ""
    #: tool calls the agent may make in one turn before it must answer (None: AnswerCustomer's 12)
    max_tool_steps: int | None = None


def support_team(service: RetailTools, policy: str, options: ServiceOptions | None = None) -> list[Role]:
    """The support team on ``service``'s store: the agent, and the policy checker as the
    approver of its state-changing calls (unless ``options.checker`` is off)."""
    options = options or ServiceOptions()
    agent = SupportAgent(service, policy, instructions=options.instructions, max_tool_steps=options.max_tool_steps)
    if not options.checker:
        return [agent]
    checker = PolicyChecker(service)
    agent.toolbox.approve = checker.review
    return [agent, checker]


def trajectory_of(task_id: str, messages: Sequence[Message]) -> Trajectory:
    """The conversation on the bus as a graded trajectory: what the customer and the agent
    said, and every tool call that reached the store with the service's reply (calls whose
    arguments did not fit, and calls the checker declined, never reached it)."""
    trajectory = Trajectory(task_id=task_id)
    for message in messages:
        if isinstance(message.payload, ToolExchange):
            results = {r.call_id: r for r in message.payload.results}
            for call in message.payload.calls:
                result = results.get(call.id)
                try:
                    arguments = json.loads(call.arguments or "{}")
                except ValueError:
                    continue
                if result is None or was_declined(result.content) or not reaches_store(call.name, arguments):
                    continue
                trajectory.steps.append(ToolStep(call_id=call.id, name=call.name, arguments=arguments,
                                                 content=result.content, error=result.is_error))
        elif is_customer(message):
            trajectory.steps.append(Said(role="user", text=message.content))
        elif message.cause_by in (AnswerCustomer, HandedToHuman):
            trajectory.steps.append(Said(role="assistant", text=message.content))
    return trajectory


def ending(result: RunResult | None, messages: Sequence[Message]) -> Ending:
    """How the conversation ended, from the team's result (None: it raised) and the bus."""
    if result is None:
        return "error"
    if result.stop_reason != "idle":
        return result.stop_reason  # type: ignore[return-value]  # max_rounds or budget
    last = next((m for m in reversed(messages) if m.cause_by in (CustomerLeft, HandedToHuman)), None)
    return "transfer" if last is not None and last.cause_by is HandedToHuman else "customer"


@dataclass
class Conversation:
    """One support conversation: how it ended, what was said and done, the store after it."""

    trajectory: Trajectory
    #: the store the team worked on, as the conversation left it
    store: RetailStore
    ended: Ending
    detail: str
    #: messages the customer sent
    turns: int
    seconds: float
    workspace: Path
    transcript: Path
    log: Path
    #: everything published on the bus, in order (the greeting, the turns, the tool exchanges)
    messages: list[Message] = field(default_factory=list)
    #: the team's result (None when the conversation ended in an error)
    run: RunResult | None = None
    #: what the conversation's model calls used
    spend: Spend = field(default_factory=Spend)
    #: what the judge said (``converse(judge=...)``), also in the transcript's end record
    verdict: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


#: Grades a finished conversation: (trajectory, store) -> a JSON-able verdict.
Judge = Callable[[Trajectory, RetailStore], dict[str, Any]]


async def converse(
    scenario: str,
    store: RetailStore,
    policy: str,
    *,
    model: Model,
    options: RunOptions,
    service: ServiceOptions | None = None,
    idea: str | None = None,
    task_id: str = "",
    judge: Judge | None = None,
) -> Conversation:
    """Run one conversation between the support team on ``store`` and a customer playing
    ``scenario``, into the workspace ``options.workspace``.

    ``idea`` names the run in its records (default: the scenario's first line). ``judge``,
    when given, grades the conversation before its records are closed: its verdict is logged
    (a ``verdict`` event) and written in the transcript's end record, where the report shows
    it. A model error ends the conversation (``ended="error"``, the error in ``detail``): what
    the team did until then stands, and is graded.
    """
    started = time.perf_counter()
    options = replace(options, sandbox=options.sandbox or "none")  # a conversation runs no generated code
    session = RunSession.begin(model, options)
    idea = idea or next((line.strip() for line in scenario.splitlines() if line.strip()), "a support conversation")
    note = None if session.previous is not None else prepare_workspace(session.root, force=options.force)
    session.open(idea, note, meta={"conversation": True, "sop": "service", "task_id": task_id})
    assert session.model is not None and session.env is not None
    team = Team(model=session.model, env=session.env, budget=options.budget, workspace=session.root,
                settings={"prices": options.prices} if options.prices else None)
    team.hire(*support_team(RetailTools(store), policy, service), Customer(scenario))
    session.install_review(team.roles)
    agent = team.roles[0]
    session.env.publish(Message(content=GREETING, payload=AgentReply(text=GREETING), sent_from=agent.name,
                                cause_by=AnswerCustomer))
    result: RunResult | None = None
    detail = ""
    try:
        try:
            result = await team.run(None, max_rounds=options.max_rounds)
            detail = result.detail
        except MgptError as exc:  # logged by the team as an ``error`` event
            detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        messages = list(session.env.history)
        trajectory = trajectory_of(task_id, messages)
        verdict = judge(trajectory, store) if judge is not None else None
        ended = ending(result, messages)
        if verdict is not None:
            session.env.emit(Event(kind="verdict", detail=_verdict_line(verdict), data=verdict))
        session.end(EndRecord(stop_reason=ended, detail=detail, rounds=result.rounds if result else 0,
                              tests_passed=bool(verdict and verdict.get("passed")), report=verdict))
    finally:
        await session.close()
    session.wrap_up()
    return Conversation(
        trajectory=trajectory, store=store, ended=ended, detail=detail,
        turns=sum(is_customer(m) for m in messages), seconds=time.perf_counter() - started,
        workspace=session.root, transcript=session.transcript, log=session.log, messages=messages, run=result,
        spend=team.context.budget.total, verdict=verdict, notes=session.notes,
    )


def _verdict_line(verdict: dict[str, Any]) -> str:
    if "passed" not in verdict:
        return json.dumps(verdict)[:200]
    missing = verdict.get("missing_info") or []
    state = "as expected" if verdict.get("state_matches") else "not as expected"
    said = f"; not said: {', '.join(missing)}" if missing else ""
    return f"{'passed' if verdict['passed'] else 'failed'}: store {state}{said}"


def task_judge(task: Task, start: RetailStore, expected: RetailStore | None = None, *, rebuild: bool = False) -> Judge:
    """A judge that grades a conversation on ``task`` as τ²-bench does: the store's end state
    against the gold actions' (replayed on ``start``), and what the agent said.

    ``rebuild`` grades the end state that the trajectory's calls give on a fresh copy of
    ``start`` (as τ²-bench's evaluator does) instead of the store the team worked on: what a
    replayed conversation needs, whose tool calls were answered from its transcript."""

    def judge(trajectory: Trajectory, store: RetailStore) -> dict[str, Any]:
        if rebuild:
            store = start.copy()
            replay_trajectory(trajectory, store)
        verdict = grade(task, store, trajectory.agent_messages(), start, expected=expected)
        return verdict.model_dump(mode="json")

    return judge


def open_store(path: str | Path, data: RetailData | None = None) -> RetailStore:
    """The store in the SQLite file ``path``: opened when it exists, else made there from
    τ²-bench's ``db.json`` (fetched on first use)."""
    path = Path(path)
    if path.exists():
        return RetailStore.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return RetailStore.from_json((data or RetailData.load()).db_json(), path)


# --- the SOP --------------------------------------------------------------------------------


@dataclass
class ServiceResult:
    """What a ``service`` run reports to ``mgpt run`` (the fields an SOP's result needs)."""

    conversation: Conversation
    run: RunResult
    workspace: Path
    files: list[str]
    transcript: Path
    log: Path
    notes: list[str]
    replayed_calls: int = 0
    new_calls: int = 0

    @property
    def ok(self) -> bool:
        """The task passed (a task run), or the customer ended the conversation (a scenario)."""
        verdict = self.conversation.verdict
        return bool(verdict["passed"]) if verdict is not None else self.conversation.ended == "customer"


_TASK_IDEA = re.compile(r"^\s*(?:retail\s+)?task\s+(\S+)\s*$", re.IGNORECASE)


def find_task(data: RetailData, task_id: str) -> Task:
    """The retail task ``task_id`` (of any split)."""
    for task in load_tasks(data, "base"):
        if task.id == task_id:
            return task
    raise RetailDataError(f"there is no retail task {task_id!r}: the ids are 0 to 113 (see split_tasks.json)")


async def run_service(idea: str | None, *, model: Model, options: RunOptions, **service: Any) -> ServiceResult:
    """The SOP ``service``: one conversation. ``idea`` is ``task N`` (τ²-bench retail task N:
    its customer, graded as τ²-bench grades it) or a scenario in your words for the simulated
    customer. The store starts from ``db.json`` in ``WS/store.sqlite``."""
    if not idea or not idea.strip():
        raise MgptError('say who the customer is: mgpt run --sop service "task 5", or a scenario in words')
    data = RetailData.load()
    matched = _TASK_IDEA.match(idea)
    task = find_task(data, matched.group(1)) if matched else None
    root = Path(options.workspace)
    if not options.resume:
        prepare_workspace(root, force=options.force)
        (root / STORE_FILE).unlink(missing_ok=True)
    store = open_store(root / STORE_FILE, data)
    start = RetailStore.from_json(data.db_json())
    scenario = task.user_scenario.describe() if task else idea
    conversation = await converse(
        scenario, store, data.policy(), model=model, options=replace(options, force=True),
        service=ServiceOptions(**service), idea=f"retail task {task.id}" if task else idea,
        # graded on the state the trajectory rebuilds: the same live, and right for --replay/--resume
        task_id=task.id if task else "", judge=task_judge(task, start, rebuild=True) if task else None,
    )
    run = conversation.run or RunResult(
        stop_reason="error",  # type: ignore[arg-type]  # the team raised: mgpt run reports it as stopped
        rounds=0, seconds=conversation.seconds, spend=conversation.spend, messages=[], detail=conversation.detail)
    return ServiceResult(conversation=conversation, run=run, workspace=conversation.workspace,
                         files=[STORE_FILE], transcript=conversation.transcript, log=conversation.log,
                         notes=conversation.notes)

