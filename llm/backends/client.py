"""The LLM handle a role's actions call: one model plus who is asking, budget and accounting.

Every call goes through :meth:`LLM.ask`: it holds the call's worst case against the budget
*before* the call (refusing a call that might not fit), tags the request with (role, action,
turn) so transcripts can record and replay it, and charges the reported usage and cost to the
role afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable

from mgpt.agents.budget import Budget, Hold
from mgpt.agents.runlog import Event

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, accepts_output
from mgpt.llm.backends.cost import DEFAULT_TOKENS_PER_CHAR, PriceTable, call_cap, priced_as, require_price, worst_case


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
        hold = self._reserve(messages)
        self._turns[action] += 1
        context = CallContext(role=self.role, action=action, turn=self._turns[action])
        started = time.perf_counter()
        try:
            if output is not None and accepts_output(self.model):
                completion = await self.model.complete(messages, context=context, output=output)
            else:
                completion = await self.model.complete(messages, context=context)
        except BaseException:
            self.budget.release(hold)
            raise
        cost = self.prices.cost(priced_as(self.model), completion.usage)
        prompt_chars = sum(len(m.content) for m in messages)
        self.budget.charge(
            self.role,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cost=cost,
            prompt_chars=prompt_chars,
            hold=hold,
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

    def _reserve(self, messages: list[ChatMessage]) -> Hold:
        """Hold this call's worst case against the budget, or raise BudgetExceeded.

        The prompt's tokens are estimated from its characters, at the ratio this run has
        measured so far when that is higher than the default (a character-level model).
        """
        name = priced_as(self.model)
        price = self.prices.price(name)
        if self.budget.max_cost is not None and price is None:
            require_price(name, self.prices)
        spent = self.budget.total
        ratio = DEFAULT_TOKENS_PER_CHAR
        if spent.prompt_chars:
            ratio = max(ratio, spent.prompt_tokens / spent.prompt_chars)
        cap = call_cap(self.model)
        prompt, completion, cost = worst_case(messages, cap, price, ratio)
        why = f"~{prompt} prompt tokens + " + (
            f"up to {completion} completion tokens" if cap else "the answer (this model sets no cap on it)"
        )
        return self.budget.reserve(self.role, tokens=prompt + completion, cost=cost or 0.0, why=why)
