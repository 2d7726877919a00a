"""``mgpt service``: the support team answering a person in the terminal, on a store you name.

A :class:`ServiceDesk` is a :class:`~mgpt.llm.serve.chat.ChatSession` whose answers come from
the support team (:func:`mgpt.workflows.service.support_team`) instead of one model call: each
message you type goes on the team's bus as the customer's, the agent answers (calling the
retail tools, each state-changing call reviewed by the policy checker), and its answer is
shown. So ``mgpt chat``'s loop runs it unchanged: the same input (continued lines, paste
blocks), the same commands (``/reset`` starts a new conversation, ``/system TEXT`` adds
instructions for the agent after the policy, ``/history``, ``/save FILE``, ``/exit``).

The store is a SQLite file: changes the team makes stay in it across sessions
(:func:`mgpt.workflows.service.open_store` makes it from τ²-bench's ``db.json`` on first use).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from mgpt.actions.service import (
    GREETING, AgentReply, AnswerCustomer, HandedToHuman, SpeakAsCustomer, agent_system_prompt,
)
from mgpt.agents.environment import Environment
from mgpt.agents.message import Message
from mgpt.agents.runlog import RunLog
from mgpt.agents.team import Team
from mgpt.agents.tools import ToolCall, ToolExchange, ToolResult
from mgpt.domains.retail import RetailStore, RetailTools
from mgpt.llm.backends.base import ChatMessage, Completion, Model
from mgpt.llm.serve.chat import ChatSession
from mgpt.workflows.service import ServiceOptions, support_team

__all__ = ["CUSTOMER", "ServiceDesk"]

#: The name the person's messages are sent from on the bus.
CUSTOMER = "customer"


class ServiceDesk(ChatSession):
    """The support team behind ``mgpt chat``'s interface.

    ``store`` is the store the team works on, ``policy`` the agent's policy; ``service`` the
    team's options (the checker on or off, more instructions). ``log``, when given, is a run
    log file that every event of the session is appended to. ``on_tool(call, result)`` is told
    of each tool call the team made, after its answer.
    """

    def __init__(
        self,
        model: Model,
        store: RetailStore,
        policy: str,
        *,
        service: ServiceOptions | None = None,
        log: str | Path | None = None,
        on_tool: Callable[[ToolCall, ToolResult], Any] | None = None,
    ):
        service = service or ServiceOptions()
        super().__init__(model, system=service.instructions or None, on_tool=on_tool)
        self.store = store
        self.policy = policy
        self.service = service
        self.log = Path(log) if log is not None else None
        self.env: Environment | None = None
        self.team: Team | None = None

    def _open(self) -> Team:
        """The team of this conversation, hired on a fresh bus that starts with the greeting."""
        if self.team is None:
            self.env = Environment(RunLog(self.log) if self.log is not None else None)
            self.team = Team(model=self.model, env=self.env)
            options = replace(self.service, instructions=self.system or "")
            self.team.hire(*support_team(RetailTools(self.store), self.policy, options))
            agent = self.team.roles[0]
            self.env.publish(Message(content=GREETING, payload=AgentReply(text=GREETING), sent_from=agent.name,
                                     cause_by=AnswerCustomer))
        return self.team

    async def ask(self, text: str, on_delta: Callable[[str], Any] | None = None) -> Completion:
        """Put ``text`` on the bus as the customer's message and run the team until the agent
        has answered; its answer is the completion."""
        team = self._open()
        assert self.env is not None
        agent = team.roles[0]
        action = agent.actions[0]
        if isinstance(action, AnswerCustomer):  # /system may have changed the instructions
            action.system = agent_system_prompt(self.policy, self.system or "")
        before = len(self.env.history)
        self.env.publish(Message(content=text, sent_from=CUSTOMER, cause_by=SpeakAsCustomer))
        await team.run(None, max_rounds=1)
        new = self.env.history[before:]
        reply = next((m for m in reversed(new) if m.cause_by in (AnswerCustomer, HandedToHuman)), None)
        answer = reply.content if reply is not None else ""
        for message in new:
            if isinstance(message.payload, ToolExchange) and self.on_tool is not None:
                results = {r.call_id: r for r in message.payload.results}
                for call in message.payload.calls:
                    if call.id in results:
                        self.on_tool(call, results[call.id])
        turns = reply.payload.turns if reply is not None and isinstance(reply.payload, AgentReply) else []
        self.turns += [ChatMessage(role="user", content=text), *turns, ChatMessage(role="assistant", content=answer)]
        if on_delta is not None and answer:
            on_delta(answer)
        return Completion(text=answer, model=self.model.name)

    def reset(self) -> None:
        """Start a new conversation (the store keeps what was done)."""
        super().reset()
        if self.env is not None:
            self.env.close()
        self.env, self.team = None, None

    async def aclose(self) -> None:
        try:
            if self.env is not None:
                self.env.close()
        finally:
            await self.model.aclose()
