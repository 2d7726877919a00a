"""The LLM handle a role's actions call: one model plus who is asking, budget and accounting.

Every call goes through :meth:`LLM.ask`: it holds the call's worst case against the budget
*before* the call (refusing a call that might not fit), tags the request with (role, action,
turn) so transcripts can record and replay it, and charges the reported usage and cost to the
role afterwards.

The answer is streamed: ``on_progress`` hears how much of it has arrived (``llm_progress``
events, never logged: the live view shows them), and the ``llm_call`` event records its time
to first token and tokens per second. An action that makes several calls at once reserves
their turns first, in plan order (:meth:`LLM.reserve_turns`), so each call is keyed by what
it is, not by when it happened to start.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from mgpt.agents.budget import Budget, Hold
from mgpt.agents.runlog import Event

from mgpt.llm.backends.base import (
    CallClock, CallContext, CallTiming, ChatMessage, Completion, Model, OutputFormat, accepts_output,
)
from mgpt.llm.backends.cost import DEFAULT_TOKENS_PER_CHAR, PriceTable, call_cap, priced_as, require_price, worst_case


#: Seconds between two progress events of one call (the live view redraws at 8 Hz).
PROGRESS_EVERY = 0.1


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
        on_progress: Callable[[Event], None] | None = None,
    ):
        self.model = model
        self.role = role
        self.budget = budget or Budget()
        self.prices = prices or PriceTable()
        self.on_event = on_event
        #: Hears ``llm_progress`` events while answers stream in (not logged).
        self.on_progress = on_progress
        self._turns: Counter[str] = Counter()

    def reserve_turns(self, action: str, count: int) -> list[int]:
        """The turn numbers of ``count`` calls of ``action`` about to be made together, in
        plan order: pass each to :meth:`ask` as ``turn``. Reserved before any starts, a
        call's turn (its replay key) does not depend on the order the calls run in."""
        first = self._turns[action] + 1
        self._turns[action] += count
        return list(range(first, first + count))

    async def ask(
        self,
        prompt: str | list[ChatMessage],
        *,
        system: str | None = None,
        action: str = "",
        output: OutputFormat | None = None,
        turn: int | None = None,
    ) -> Completion:
        """Send ``prompt`` (text, or whole chat messages) and return the completion.
        ``output`` asks the backend to hold the answer to that shape where it can; ``turn``
        is one :meth:`reserve_turns` gave (default: the action's next turn)."""
        messages = [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) else list(prompt)
        if system:
            messages.insert(0, ChatMessage(role="system", content=system))
        hold = self._reserve(messages)
        if turn is None:
            turn = self.reserve_turns(action, 1)[0]
        context = CallContext(role=self.role, action=action, turn=turn)
        try:
            completion, timing = await self._stream(messages, context, output)
        except BaseException:
            self.budget.release(hold)
            raise
        usage = completion.usage
        cost = self.prices.cost(priced_as(self.model), usage)
        prompt_chars = sum(len(m.content) for m in messages)
        self.budget.charge(
            self.role,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            prompt_chars=prompt_chars,
            hold=hold,
            cached_tokens=usage.cached_tokens,
        )
        if self.on_event is not None:
            self.on_event(Event(kind="llm_call", role=self.role, detail=action, data={
                "turn": context.turn,
                "model": self.model.name,
                "prompt_chars": prompt_chars,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost": cost,
                "finish_reason": completion.finish_reason,
                "seconds": timing.seconds,
                "ttft": timing.ttft,
                "tokens_per_s": timing.tokens_per_s,
                # Only when there is something to say (older logs stay the same).
                **({"cached_tokens": usage.cached_tokens} if usage.cached_tokens else {}),
                **({"output": output.label()} if output is not None else {}),
            }))
        return completion

    async def _stream(
        self, messages: list[ChatMessage], context: CallContext, output: OutputFormat | None
    ) -> tuple[Completion, CallTiming]:
        """The model's answer, streamed: progress reported as it arrives, timed."""
        kwargs = {"output": output} if output is not None and accepts_output(self.model) else {}
        clock = CallClock()
        pieces: list[str] = []
        completion: Completion | None = None
        shown = -1.0
        if self.on_progress is not None:  # the call is in flight, nothing has come yet
            self._progress(context, clock, 0)
        stream = self.model.stream(messages, context=context, **kwargs)
        try:
            async for chunk in stream:
                if chunk.delta:
                    pieces.append(chunk.delta)
                    elapsed = clock.tick()
                    if self.on_progress is not None and elapsed - shown >= PROGRESS_EVERY:
                        shown = elapsed
                        self._progress(context, clock, sum(map(len, pieces)))
                if chunk.completion is not None:
                    completion = chunk.completion
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if completion is None:  # a stream that ended without its summary: what arrived is the answer
            completion = Completion(text="".join(pieces), finish_reason=None, model=self.model.name)
        return completion, clock.timing(completion.usage.completion_tokens)

    def _progress(self, context: CallContext, clock: CallClock, chars: int) -> None:
        assert self.on_progress is not None
        self.on_progress(Event(kind="llm_progress", role=self.role, detail=context.action, data={
            "turn": context.turn, "chars": chars, "pieces": clock.pieces, "ttft": clock.first,
        }))

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
