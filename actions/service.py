"""The support desk's actions: the agent's turn, the simulated customer's turn, the policy check.

A support conversation is two roles taking turns on the bus, as in τ²-bench: the support
agent opens with :data:`GREETING`, then the customer and the agent answer each other.

- :class:`AnswerCustomer`: the agent answers the customer's latest message. It holds the
  store's policy (its system prompt, worded as τ²-bench's agent gets it) and calls the
  retail service's tools one at a time, as the policy asks, until it has an answer for the
  customer (at most ``max_tool_steps`` calls a turn). A call to
  ``transfer_to_human_agents`` that succeeds ends the conversation (:class:`HandedToHuman`).
- :class:`SpeakAsCustomer`: a simulated customer, driven by a task's scenario (what they
  want, what they know, their persona). It ends the conversation with a stop token
  (:data:`END_TOKENS`, τ²-bench's): its message is then caused by :class:`CustomerLeft`,
  which no role answers.
- :class:`CheckPolicy`: reviews one state-changing call before it runs, against the rules
  of ``policy.md`` that can be checked without a model: the customer is authenticated, the
  order (or profile) is theirs, and their latest message confirms with an explicit yes. No
  model is asked.

:func:`service_tools` turns a :class:`~mgpt.domains.retail.RetailTools` into the agent's
tools: the same names, schemas and replies (``Error: <the service's answer>`` for a refusal),
the state-changing ones marked ``needs_approval`` so that a reviewer sees them first.
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from pydantic import BaseModel, Field

from mgpt.actions.base import Action, ActionContext
from mgpt.agents.message import Message
from mgpt.agents.runlog import Event
from mgpt.agents.tools import DECLINED, FunctionTool, Tool, ToolError, ToolExchange
from mgpt.domains.retail import WRITE_TOOLS, RetailError, RetailTools
from mgpt.llm.backends.base import ChatMessage, ToolOptions

__all__ = [
    "AGENT_INSTRUCTION", "END_TOKENS", "GREETING", "OUT_OF_SCOPE", "STOP", "TRANSFER", "TRANSFER_MESSAGE",
    "AgentReply", "AnswerCustomer", "CallUnderReview", "CheckPolicy", "CustomerLeft", "HandedToHuman",
    "PolicyVerdict", "ServiceTool", "SpeakAsCustomer", "agent_system_prompt", "authenticated_user",
    "customer_system_prompt", "is_customer", "service_tools", "was_declined",
]

#: The agent's first message, before the customer says anything (τ²-bench's).
GREETING = "Hi! How can I help you today?"
#: The customer's tokens that end a conversation: done, transferred, or out of what the
#: scenario says (τ²-bench's user simulator's).
STOP, TRANSFER, OUT_OF_SCOPE = "###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"
END_TOKENS = (STOP, TRANSFER, OUT_OF_SCOPE)
#: What the policy tells the agent to say once it has transferred the customer.
TRANSFER_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
TRANSFER_TOOL = "transfer_to_human_agents"
AUTHENTICATE_TOOLS = ("find_user_id_by_email", "find_user_id_by_name_zip")

#: τ²-bench's instructions to its agent, before the policy.
AGENT_INSTRUCTION = """\
You are a customer service agent that helps the user according to the <policy> provided below.
In each turn you can either:
- Send a message to the user.
- Make a tool call.
You cannot do both at the same time.

Try to be helpful and always follow the policy. Always make sure you generate valid JSON only."""

CUSTOMER_GUIDELINES = f"""\
# How to play the customer
You are a customer contacting a customer service agent. Play the customer described in the
scenario below, one message at a time, as a real customer would.

- Follow the scenario's instructions. Do not invent information it does not give you: what
  it does not say, you do not know.
- Do not copy the instructions word for word; say things in your own words.
- Give information only when the agent asks for it.
- When what the scenario asks for is done, write {STOP} to end the conversation.
- If you are transferred to another agent, write {TRANSFER}.
- If the scenario does not tell you enough to go on, write {OUT_OF_SCOPE}."""


def agent_system_prompt(policy: str, instructions: str = "") -> str:
    """The support agent's system message: τ²-bench's instructions, then the policy, then
    any ``instructions`` of yours."""
    prompt = f"<instructions>\n{AGENT_INSTRUCTION}\n</instructions>\n<policy>\n{policy}\n</policy>"
    return f"{prompt}\n{instructions}" if instructions.strip() else prompt


def customer_system_prompt(scenario: str) -> str:
    """The simulated customer's system message: how to play a customer, then the scenario."""
    return f"{CUSTOMER_GUIDELINES}\n\n<scenario>\n{scenario}\n</scenario>"


# --- the agent's tools ------------------------------------------------------------------------


class ServiceTool(Tool):
    """One tool of the retail service, as the agent's model sees it: the method's name,
    docstring and parameters; a call runs on the store in one transaction
    (:meth:`RetailTools.call`) and a refusal is the error the model reads, worded as the
    service words it (``Error: Non-pending order cannot be cancelled``)."""

    def __init__(self, service: RetailTools, name: str):
        described = FunctionTool(getattr(service, name))
        self.service = service
        self.name = name
        self.description = described.description
        self.parameters = described.parameters
        self.needs_approval = name in WRITE_TOOLS
        self._described = described

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._described.validate(arguments)

    async def invoke(self, arguments: dict[str, Any]) -> str:
        reply = self.service.call(self.name, arguments)
        if reply.error:
            raise ToolError(reply.content.removeprefix("Error: "))
        return reply.content


def service_tools(service: RetailTools) -> list[Tool]:
    """Every tool of ``service`` for an agent's toolbox; the state-changing ones need approval."""
    return [ServiceTool(service, fn.__name__) for fn in service.as_list()]


# --- what goes on the bus ---------------------------------------------------------------------


class CustomerLeft:
    """The ``cause_by`` of the customer's message that ends the conversation (a stop token)."""


class HandedToHuman:
    """The ``cause_by`` of the agent's message after it transferred the customer to a human."""


class AgentReply(BaseModel):
    """The agent's message to the customer, with the tool calls and results it went through
    first (the chat turns its model saw this turn, so the next turn sees them again)."""

    text: str
    turns: list[ChatMessage] = Field(default_factory=list)
    #: The agent handed the customer over to a human agent this turn.
    transferred: bool = False

    def to_markdown(self) -> str:
        return self.text


class CallUnderReview(BaseModel):
    """A state-changing call the agent asked for, before it runs."""

    name: str
    arguments: dict[str, Any]

    def brief(self) -> str:
        return f"{self.name}({json.dumps(self.arguments, sort_keys=True)})"


class PolicyVerdict(BaseModel):
    """The policy checker's decision on one call: approved, or declined with the reason the
    agent reads."""

    call: str
    approved: bool
    reason: str = ""

    def to_markdown(self) -> str:
        return f"approved `{self.call}`" if self.approved else f"declined `{self.call}`: {self.reason}"


def is_customer(message: Message) -> bool:
    """Whether ``message`` is something the customer said."""
    return message.cause_by in (SpeakAsCustomer, CustomerLeft)


# --- the turns ----------------------------------------------------------------------------------


class AnswerCustomer(Action):
    """The support agent's turn: answer the customer's latest message, calling the service's
    tools one at a time first where needed."""

    description = "Answer the customer, calling the retail service's tools where needed."
    #: Tool calls one turn may make before the agent must answer the customer.
    max_tool_steps = 12

    def __init__(self, policy: str, instructions: str = "", *, max_tool_steps: int | None = None):
        super().__init__()
        self.system = agent_system_prompt(policy, instructions)
        if max_tool_steps is not None:
            if max_tool_steps < 1:
                raise ValueError("max_tool_steps must be at least 1")
            self.max_tool_steps = max_tool_steps

    async def conversation(self, ctx: ActionContext) -> list[ChatMessage]:
        """The chat the agent's model sees: the policy, the greeting, then each customer
        message and each of its own turns (their tool calls and results included)."""
        messages = [ChatMessage(role="system", content=self.system), ChatMessage(role="assistant", content=GREETING)]
        for message in await ctx.memory.get():
            if message.sent_from != ctx.role_name:
                messages.append(ChatMessage(role="user", content=message.content))
                continue
            if isinstance(message.payload, AgentReply):
                messages += message.payload.turns
            messages.append(ChatMessage(role="assistant", content=message.content))
        return messages

    async def run(self, ctx: ActionContext) -> Message:
        messages = await self.conversation(ctx)
        if ctx.tools is None:
            text = await self.ask(messages)
            return Message(content=text, payload=AgentReply(text=text))
        specs = [t.spec() for t in await ctx.tools.tools()]
        turns: list[ChatMessage] = []
        for _ in range(self.max_tool_steps):
            completion = await self.llm.ask(messages, action=self.name, tools=ToolOptions(tools=specs, parallel=False))
            if not completion.tool_calls:
                return Message(content=completion.text, payload=AgentReply(text=completion.text, turns=turns))
            results = await self.llm.run_tools(ctx.tools, completion.tool_calls, action=self.name)
            new = [ChatMessage(role="assistant", content=completion.text, tool_calls=completion.tool_calls)]
            new += [ChatMessage.tool_result(r) for r in results]
            messages += new
            turns += new
            if any(c.name == TRANSFER_TOOL and not r.is_error for c, r in zip(completion.tool_calls, results)):
                reply = AgentReply(text=TRANSFER_MESSAGE, turns=turns, transferred=True)
                return Message(content=TRANSFER_MESSAGE, payload=reply, cause_by=HandedToHuman)
        if self.llm.on_event is not None:
            self.llm.on_event(Event(kind="bound", role=self.llm.role, detail=(
                f"{self.name}: max_tool_steps={self.max_tool_steps} tool calls this turn; answering the customer")))
        options = ToolOptions(tools=specs, choice="none", parallel=False)
        text = (await self.llm.ask(messages, action=self.name, tools=options)).text
        return Message(content=text, payload=AgentReply(text=text, turns=turns))


class SpeakAsCustomer(Action):
    """The simulated customer's turn: the next message of the customer the scenario
    describes, or a stop token when they are done."""

    description = "Say the customer's next message, as the scenario describes them."

    def __init__(self, scenario: str):
        super().__init__()
        self.system = customer_system_prompt(scenario)

    async def run(self, ctx: ActionContext) -> Message:
        # The roles swap in the customer's chat: the agent's messages are its "user" turns.
        messages = [ChatMessage(role="system", content=self.system)]
        for message in await ctx.memory.get():
            role = "assistant" if message.sent_from == ctx.role_name else "user"
            messages.append(ChatMessage(role=role, content=message.content))
        text = await self.ask(messages)
        if any(token in text for token in END_TOKENS):
            return Message(content=text, cause_by=CustomerLeft)
        return Message(content=text)


class CheckPolicy(Action):
    """Review a state-changing call against the policy's checkable rules, before it runs.

    The newest message of the turn carries the call (:class:`CallUnderReview`); the ones
    before it are the conversation so far. Declined, with the reason the agent reads, when:

    - no customer was authenticated (a ``find_user_id_by_*`` call that succeeded);
    - the order (or the profile) is not the authenticated customer's: one customer per
      conversation;
    - the customer's latest message does not confirm with an explicit "yes".

    An order the store does not know is let through: the service refuses it with its own error.
    """

    description = "Check a state-changing call against the policy before it runs."

    def __init__(self, service: RetailTools):
        super().__init__()
        self.service = service

    async def run(self, ctx: ActionContext) -> PolicyVerdict:
        request = ctx.news[-1].payload
        if not isinstance(request, CallUnderReview):
            raise TypeError("CheckPolicy reviews a CallUnderReview: put it in the turn's newest message")
        reason = self.problem(request, ctx.news[:-1])
        return PolicyVerdict(call=request.brief(), approved=reason is None, reason=reason or "")

    def problem(self, request: CallUnderReview, conversation: Sequence[Message]) -> str | None:
        """Why ``request`` breaks the policy, or None when it may run."""
        customer = authenticated_user(conversation)
        if customer is None:
            return ("the customer is not authenticated: find their user id with find_user_id_by_email, or "
                    "find_user_id_by_name_zip, first (even when they give you their user id)")
        owner = self.owner(request)
        if owner is not None and owner != customer:
            return (f"this is not the authenticated customer's ({customer}): you can help only one customer per "
                    "conversation")
        said = [m.content for m in conversation if is_customer(m)]
        if not said or not re.search(r"\byes\b", said[-1], re.IGNORECASE):
            return ("the customer has not confirmed: list the action's details and get their explicit confirmation "
                    "(yes) before you make this call")
        return None

    def owner(self, request: CallUnderReview) -> str | None:
        """Whose order or profile the call changes (None: the store does not know it)."""
        if "order_id" in request.arguments:
            try:
                return self.service.get_order_details(str(request.arguments["order_id"]))["user_id"]
            except RetailError:
                return None
        user_id = request.arguments.get("user_id")
        return str(user_id) if user_id is not None else None


def authenticated_user(conversation: Sequence[Message]) -> str | None:
    """The user id the first successful ``find_user_id_by_*`` call of the conversation found."""
    for message in conversation:
        if not isinstance(message.payload, ToolExchange):
            continue
        results = {r.call_id: r for r in message.payload.results}
        for call in message.payload.calls:
            result = results.get(call.id)
            if call.name in AUTHENTICATE_TOOLS and result is not None and not result.is_error:
                return result.content
    return None


def was_declined(content: str) -> bool:
    """Whether a tool result is a reviewer's refusal (the call never ran)."""
    return content.startswith(f"Error: {DECLINED}")
