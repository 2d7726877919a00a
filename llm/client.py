"""The LLM handle a role's actions call: one model plus who is asking, budget and accounting.

Every call goes through :meth:`LLM.ask`: it checks the budget *before* the call, tags the
request with (role, action, turn) so transcripts can record and replay it, and charges the
reported usage and cost to the role afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable

from mgpt.agents.budget import Budget
from mgpt.agents.runlog import Event

from .base import CallContext, ChatMessage, Completion, Model, OutputFormat, accepts_output
from .cost import PriceTable


class LLM:
    """A role's view of the run's model."""

    def __init__(
        self,
        model: Model,
        *,
        role: str = "",
        budget: Budget | None = None,
        prices: PriceTable | None = None,
        on_event: Callable[[Event], None] | None = None,
    ):
        self.model = model
        self.role = role
        self.budget = budget or Budget()
        self.prices = prices or PriceTable()
        self.on_event = on_event
        self._turns: Counter[str] = Counter()

    async def ask(
        self,
        prompt: str | list[ChatMessage],
        *,
        system: str | None = None,
        action: str = "",
        output: OutputFormat | None = None,
    ) -> Completion:
        """Send ``prompt`` (text, or whole chat messages) and return the completion.
        ``output`` asks the backend to hold the answer to that shape where it can."""
        messages = [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) else list(prompt)
        if system:
            messages.insert(0, ChatMessage(role="system", content=system))
        self.budget.check(self.role)
        self._turns[action] += 1
        context = CallContext(role=self.role, action=action, turn=self._turns[action])
        started = time.perf_counter()
        if output is not None and accepts_output(self.model):
            completion = await self.model.complete(messages, context=context, output=output)
        else:
            completion = await self.model.complete(messages, context=context)
        cost = self.prices.cost(self.model.name, completion.usage)
        prompt_chars = sum(len(m.content) for m in messages)
        self.budget.charge(
            self.role,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cost=cost,
            prompt_chars=prompt_chars,
        )
        if self.on_event is not None:
            self.on_event(
                Event(
                    kind="llm_call",
                    role=self.role,
                    detail=action,
                    data={
                        "turn": context.turn,
                        "model": self.model.name,
                        "prompt_chars": prompt_chars,
                        "prompt_tokens": completion.usage.prompt_tokens,
                        "completion_tokens": completion.usage.completion_tokens,
                        "cost": cost,
                        "finish_reason": completion.finish_reason,
                        "seconds": round(time.perf_counter() - started, 3),
                        # The requested shape, only when one was (older logs stay the same).
                        **({"output": output.label()} if output is not None else {}),
                    },
                )
            )
        return completion
