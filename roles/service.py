"""The support desk's roles: the support agent, the policy checker, and a simulated customer.

- :class:`SupportAgent` holds the store's policy and the retail service's tools, and answers
  each message of the customer (:class:`~mgpt.actions.service.AnswerCustomer`).
- :class:`PolicyChecker` reviews each state-changing call of the agent before it runs
  (:class:`~mgpt.actions.service.CheckPolicy`): the agent's toolbox asks it
  (:meth:`PolicyChecker.review` is the toolbox's approver). Its decisions go on the bus.
- :class:`Customer` plays the customer a scenario describes, for evaluation
  (:class:`~mgpt.actions.service.SpeakAsCustomer`); in ``mgpt service`` a person is the customer.

The team is wired by :func:`mgpt.workflows.service.support_team`.
"""

from __future__ import annotations

import json

from mgpt.actions.service import (
    AnswerCustomer, CallUnderReview, CheckPolicy, PolicyVerdict, SpeakAsCustomer, service_tools,
)
from mgpt.agents.message import Message
from mgpt.agents.tools import Tool, ToolCall
from mgpt.domains.retail import RetailTools
from mgpt.roles.base import Role

__all__ = ["Customer", "PolicyChecker", "SupportAgent"]


class SupportAgent(Role):
    """Answers the customer within the policy, with the retail service's tools."""

    name = "SupportAgent"
    profile = "customer support agent of an online retail store"
    goal = "Resolve the customer's request within the store's policy"
    watch = [SpeakAsCustomer]

    def __init__(self, service: RetailTools, policy: str, *, instructions: str = "", max_tool_steps: int | None = None,
                 name: str | None = None):
        action = AnswerCustomer(policy, instructions, max_tool_steps=max_tool_steps)
        super().__init__(name=name, actions=[action], tools=service_tools(service))


class Customer(Role):
    """A simulated customer, driven by a scenario (a τ²-bench task's ``user_scenario``)."""

    name = "Customer"
    profile = "a customer of the store, as the scenario describes them"
    watch = [AnswerCustomer]

    def __init__(self, scenario: str, *, name: str | None = None):
        super().__init__(name=name, actions=[SpeakAsCustomer(scenario)])


class PolicyChecker(Role):
    """Reviews each state-changing call of the support agent before it runs.

    It watches nothing: the agent's toolbox calls :meth:`review` with each call that needs
    approval, and the checker reads the conversation so far from the bus."""

    name = "PolicyChecker"
    profile = "checks each change to the store against the policy before it is made"

    def __init__(self, service: RetailTools, *, name: str | None = None):
        super().__init__(name=name, actions=[CheckPolicy(service)])

    async def review(self, call: ToolCall, tool: Tool) -> bool | str:
        """The toolbox's approver: True runs the call; a string declines it (the reason the
        agent reads). The decision is published on the bus."""
        history = list(self.context.env.history) if self.context is not None else []
        request = CallUnderReview(name=call.name, arguments=json.loads(call.arguments or "{}"))
        news = [*history, Message(content=request.brief(), payload=request, sent_from=self.name)]
        message = await self.act(self.actions[0], self.action_context(news))
        verdict = message.payload if message is not None else None
        if not isinstance(verdict, PolicyVerdict):
            return "the policy check gave no verdict"
        return True if verdict.approved else verdict.reason
