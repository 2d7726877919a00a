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

import logging
import time
from collections import Counter
from typing import Callable

from mgpt.agents.budget import Budget, Hold
from mgpt.agents.message import Message
from mgpt.agents.runlog import Event
from mgpt.agents.tools import ToolCall, Toolbox, ToolExchange, ToolResult, ToolUse

from mgpt.llm.backends.base import (
    CallClock, CallContext, CallTiming, ChatMessage, Completion, Model, OutputFormat, ToolOptions, accepts_output,
)
from mgpt.llm.backends.tool_protocol import call_model
from mgpt.llm.backends.cost import DEFAULT_TOKENS_PER_CHAR, PriceTable, call_cap, priced_as, require_price, worst_case
from mgpt.llm.errors import ModelUnavailableError

log = logging.getLogger(__name__)


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
        publish: Callable[[Message], object] | None = None,
        on_progress: Callable[[Event], None] | None = None,
    ):
        self.model = model
        self.role = role
        self.budget = budget or Budget()
        self.prices = prices or PriceTable()
        self.on_event = on_event
        #: Puts tool exchanges on the bus (the role's environment), when set.
        self.publish = publish
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
        tools: ToolOptions | None = None,
        turn: int | None = None,
    ) -> Completion:
        """Send ``prompt`` (text, or whole chat messages) and return the completion.
        ``output`` asks the backend to hold the answer to that shape where it can;
        ``tools`` offers the model tools (its calls come back in ``tool_calls``); ``turn``
        is one :meth:`reserve_turns` gave (default: the action's next turn)."""
        messages = [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) else list(prompt)
        if system:
            messages.insert(0, ChatMessage(role="system", content=system))
        reserved = turn
        if turn is None:
            turn = self._turns[action] + 1
        hold = self._reserve(messages, call=f"{action}#{turn}")
        if reserved is None:  # a call refused by the budget takes no turn
            self._turns[action] = turn
        context = CallContext(role=self.role, action=action, turn=turn)
        try:
            if tools is None:
                completion, timing = await self._stream(messages, context, output)
            else:  # tool calls come whole (natively, or through the prompt-and-parse protocol)
                clock = CallClock()
                completion = await call_model(self.model, messages, context=context, output=output, tools=tools)
                timing = clock.timing(completion.usage.completion_tokens)
        except BaseException:
            self.budget.release(hold)
            raise
        usage = completion.usage
        cost = self.prices.cost(priced_as(self.model), usage)
        prompt_chars = _chars(messages)
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
                **({"tools": tools.names(), "tool_calls": len(completion.tool_calls)} if tools is not None else {}),
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
        except ModelUnavailableError as exc:
            if not pieces:
                raise  # nothing arrived: the backend's own retries are spent
            # The stream broke after part of the answer, which is not the answer. The pieces
            # were progress only: ask again, whole, with the backend's retries.
            log.warning("%s/%s turn %d: %s; asking again without streaming", self.role, context.action,
                        context.turn, exc)
            completion = await self.model.complete(messages, context=context, **kwargs)
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

    def turn(self, action: str) -> int:
        """How many calls ``action`` has made so far (the last one's turn number)."""
        return self._turns[action]

    async def run_tools(self, toolbox: Toolbox, calls: list[ToolCall], *, action: str = "") -> list[ToolResult]:
        """Run the ``calls`` that ``action``'s last model call asked for.

        A replayed or resumed run gets the results recorded in its transcript instead, so no
        tool runs twice; otherwise the toolbox runs them and the results are recorded. Each
        call and result is logged (``tool_call``/``tool_result`` events), and the exchange
        goes on the bus as a message caused by :class:`~mgpt.agents.tools.ToolUse`.
        """
        context = CallContext(role=self.role, action=action, turn=self._turns[action])
        results = self.model.replayed_tool_results(context)
        replayed = results is not None and [r.call_id for r in results] == [c.id for c in calls]
        if not replayed:
            started = time.perf_counter()
            results = await toolbox.run(calls)
            seconds = round(time.perf_counter() - started, 3)
            self.model.record_tool_results(context, results)
        else:
            seconds = 0.0
        assert results is not None
        for call, result in zip(calls, results):
            self._emit(Event(kind="tool_call", role=self.role, detail=call.brief(), data={
                "action": action, "turn": context.turn, "id": call.id, "name": call.name, "arguments": call.arguments,
            }))
            self._emit(Event(kind="tool_result", role=self.role, detail=f"{call.name}: {_first_line(result.content)}", data={
                "action": action, "turn": context.turn, "id": call.id, "name": call.name,
                "error": result.is_error, "chars": len(result.content), "seconds": seconds, "replayed": replayed,
            }))
        if self.publish is not None:
            exchange = ToolExchange(action=action, calls=list(calls), results=results)
            self.publish(Message(content=exchange.to_markdown(), payload=exchange, sent_from=self.role, cause_by=ToolUse))
        return results

    def _emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _reserve(self, messages: list[ChatMessage], *, call: str = "") -> Hold:
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
        return self.budget.reserve(self.role, tokens=prompt + completion, cost=cost or 0.0, why=why, call=call)


def _chars(messages: list[ChatMessage]) -> int:
    """Characters of a request, tool calls' arguments included."""
    return sum(len(m.content) + sum(len(c.name) + len(c.arguments) for c in m.tool_calls or ()) for m in messages)


def _first_line(text: str, limit: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
