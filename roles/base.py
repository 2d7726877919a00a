"""Roles: declared as data, run by one short observe → think → act loop.

A role is a name, a profile, a goal, the actions it can take and the actions it watches::

    class Reviewer(Role):
        name = "Reviewer"
        profile = "Code reviewer"
        goal = "Catch bugs before they ship"
        actions = [ReviewCode]
        watch = [WriteCode]

A role that acts on the world also declares its ``tools`` (plain functions, :class:`Tool`
objects, MCP servers: :mod:`mgpt.agents.tools`, :mod:`mgpt.agents.mcp`); only its own
actions can call them, through ``ctx.tools`` (:class:`~mgpt.actions.base.UseTools` is the
ready-made one)::

    class Clerk(Role):
        name = "Clerk"
        actions = [UseTools]
        tools = [get_weather, MCPServer.stdio("mcp-server-time")]

When a message caused by a watched action (or addressed to the role by name) reaches it,
the role observes it into memory, thinks which action to take, acts, and publishes the
result. ``react_mode`` chooses how it thinks: ``by_order`` runs its actions in the order
declared; ``react`` lets the model pick the next action (or stop), at most
``max_react_loop`` times.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Sequence

from pydantic import BaseModel

from mgpt.actions.base import Action, ActionContext
from mgpt.agents.message import Message, UserRequirement
from mgpt.agents.runlog import Event
from mgpt.agents.team import RunContext
from mgpt.agents.tools import Toolbox, ToolLike
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.cost import PriceTable
from mgpt.llm.errors import ModelConfigError
from mgpt.memory import InMemory, Memory


class ReactMode(str, enum.Enum):
    """How a role picks its next action."""

    BY_ORDER = "by_order"
    REACT = "react"


class Role:
    """Base class for roles. Override the class attributes, or pass them to ``__init__``."""

    name: ClassVar[str] = ""
    profile: ClassVar[str] = ""
    goal: ClassVar[str] = ""
    constraints: ClassVar[str] = ""
    actions: ClassVar[Sequence[type[Action] | Action]] = ()
    watch: ClassVar[Sequence[type]] = ()
    react_mode: ClassVar[ReactMode] = ReactMode.BY_ORDER
    max_react_loop: ClassVar[int] = 5
    #: The tools this role's actions may call (none by default: tools are opt-in per role).
    tools: ClassVar[Sequence[ToolLike]] = ()

    def __init__(
        self,
        *,
        name: str | None = None,
        profile: str | None = None,
        goal: str | None = None,
        constraints: str | None = None,
        actions: Sequence[type[Action] | Action] | None = None,
        watch: Sequence[type] | None = None,
        react_mode: ReactMode | str | None = None,
        max_react_loop: int | None = None,
        memory: Memory | None = None,
        tools: Sequence[ToolLike] | None = None,
    ):
        # Instance attributes shadow the class-level declaration.
        self.name = name or type(self).name or type(self).__name__
        self.profile = profile if profile is not None else type(self).profile
        self.goal = goal if goal is not None else type(self).goal
        self.constraints = constraints if constraints is not None else type(self).constraints
        declared = actions if actions is not None else type(self).actions
        self.actions: list[Action] = [a() if isinstance(a, type) else a for a in declared]
        self.watch = frozenset(watch if watch is not None else type(self).watch)
        self.react_mode = ReactMode(react_mode or type(self).react_mode)
        self.max_react_loop = type(self).max_react_loop if max_react_loop is None else max_react_loop
        if self.max_react_loop < 1:
            raise ValueError("max_react_loop must be at least 1")
        self.memory: Memory = memory or InMemory()
        #: The role's tools, opened on first use and closed by :meth:`aclose`.
        self.toolbox = Toolbox(tools if tools is not None else type(self).tools)
        self.context: RunContext | None = None
        self.llm: LLM | None = None
        self._inbox: list[Message] = []
        self._round: list[Message] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- joining a team (the bus calls these) ----------------------------------------------

    def attach(self, context: RunContext) -> None:
        """Join a run: get the bus, the model (as this role's LLM handle) and the budget."""
        self.context = context
        if context.model is not None:
            prices = context.settings.get("prices")
            self.llm = LLM(
                context.model,
                role=self.name,
                budget=context.budget,
                prices=prices if isinstance(prices, PriceTable) else PriceTable(prices),
                on_event=context.env.emit,
                publish=context.env.publish,
                on_progress=context.env.notify,
            )
            for action in self.actions:
                action.bind(self.llm)

    async def aclose(self) -> None:
        """Stop what the role's tools started (MCP servers); the team calls this at the end."""
        await self.toolbox.aclose()

    def watches(self, message: Message) -> bool:
        return message.cause_by in self.watch

    def deliver(self, message: Message) -> None:
        self._inbox.append(message)

    def has_news(self) -> bool:
        return bool(self._inbox or self._round)

    def begin_round(self) -> None:
        """Freeze what this turn will observe; later messages wait for the next round."""
        self._round, self._inbox = self._round + self._inbox, []

    # -- the loop --------------------------------------------------------------------------

    async def observe(self) -> list[Message]:
        """Move unread messages into memory; return them."""
        if not self._round:
            self.begin_round()
        news, self._round = self._round, []
        for message in news:
            await self.memory.add(message)
        return news

    def action_context(self, news: list[Message]) -> ActionContext:
        ctx = self.context
        if ctx is not None:
            # ``--review tools`` puts the run's approver for tools that need approval here.
            self.toolbox.approve = ctx.settings.get("approve_tool") or self.toolbox.approve
            if ctx.settings.get("tool_timeout") is not None:
                self.toolbox.timeout = float(ctx.settings["tool_timeout"])
        return ActionContext(
            role_name=self.name,
            role_profile=self.profile,
            role_goal=self.goal,
            news=news,
            memory=self.memory,
            workspace=ctx.workspace if ctx else None,
            settings=ctx.settings if ctx else {},
            tools=self.toolbox if self.toolbox else None,
        )

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        """The next action to take this turn, or ``None`` to stop.

        ``by_order``: each declared action once, in order. ``react``: the model chooses.
        """
        if self.react_mode is ReactMode.BY_ORDER:
            return self.actions[len(done)] if len(done) < len(self.actions) else None
        return await self._choose_action(ctx, done)

    async def act(self, action: Action, ctx: ActionContext) -> Message | None:
        """Run ``action`` and publish what it returns."""
        env = self.context.env if self.context else None
        if env:
            env.emit(Event(kind="action_start", role=self.name, detail=action.name))
        result = await action.run(ctx)
        message = self._to_message(action, result)
        if env:
            env.emit(Event(kind="action_end", role=self.name, detail=action.name))
        if message is None:
            return None
        await self.memory.add(message)
        if env:
            env.publish(message)
        return message

    async def run(self) -> list[Message]:
        """One turn: observe the news, then think → act until there is nothing to do."""
        news = await self.observe()
        if not news:
            return []
        ctx = self.action_context(news)
        done: list[Action] = []
        published: list[Message] = []
        # Bounded: by_order stops after the declared actions, react after max_react_loop.
        limit = max(self.max_react_loop, len(self.actions))
        for _ in range(limit):
            action = await self.think(ctx, done)
            if action is None:
                break
            message = await self.act(action, ctx)
            done.append(action)
            if message is not None:
                published.append(message)
                ctx.news = [*ctx.news, message]
        else:
            if self.context is not None:
                self.context.env.emit(
                    Event(kind="bound", role=self.name, detail=f"max_react_loop={limit} reached; turn ended")
                )
        return published

    # -- helpers ---------------------------------------------------------------------------

    def _to_message(self, action: Action, result: Any) -> Message | None:
        """Wrap what an action returned as the message this role publishes, caused by the
        action's step (a variant of a step publishes as the step does)."""
        if result is None:
            return None
        if isinstance(result, Message):
            # An action that builds its own message (to set send_to) may leave the routing
            # fields to us: the sender is this role, the cause is this action's step.
            update: dict[str, Any] = {"sent_from": result.sent_from or self.name}
            if result.cause_by is UserRequirement:
                update["cause_by"] = action.step
            return result.model_copy(update=update)
        if isinstance(result, BaseModel):
            render = getattr(result, "to_markdown", None)
            content = render() if callable(render) else result.model_dump_json(indent=2)
            return Message(content=content, payload=result, sent_from=self.name, cause_by=action.step)
        return Message(content=str(result), sent_from=self.name, cause_by=action.step)

    async def _choose_action(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        if self.llm is None:
            raise ModelConfigError(f"role {self.name} is in react mode but has no model")
        menu = "\n".join(
            f"{i}. {a.name}: {a.description or 'no description'}" for i, a in enumerate(self.actions, 1)
        )
        history = "\n".join(f"- {m.sent_from or 'user'}: {m.brief(200)}" for m in ctx.news)
        taken = ", ".join(a.name for a in done) or "none yet"
        prompt = (
            f"You are {self.name}, {self.profile}. Goal: {self.goal}\n"
            f"Recent messages:\n{history}\n"
            f"Actions taken this turn: {taken}\n"
            f"Choose the next action:\n{menu}\n0. Stop: nothing more to do\n"
            "Reply with the number only."
        )
        reply = (await self.llm.ask(prompt, action="choose_action")).text
        match = re.search(r"-?\d+", reply)
        choice = int(match.group()) if match else 0
        if 1 <= choice <= len(self.actions):
            return self.actions[choice - 1]
        return None

