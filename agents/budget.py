"""What a run may spend, and what it has spent, per role.

The LLM layer asks for each call *before* making it, with the call's worst case: the
prompt's tokens (estimated) plus the most completion tokens the call may return, and what
that would cost. The call goes ahead only if the worst case fits what is left, so a run
never overshoots its limit by a call. The worst case is held (:meth:`Budget.reserve`) until
the call is charged, so calls in flight together (roles at the same time, or one role's
concurrent calls: files written along their dependencies) cannot together overshoot either:
each reservation is checked against what is spent plus every hold still open.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from pydantic import BaseModel

from mgpt.agents.errors import BudgetExceeded


class Spend(BaseModel):
    """Tokens and cost of one role (or a whole run)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Of the prompt tokens, those the provider read from its prompt cache.
    cached_tokens: int = 0
    prompt_chars: int = 0
    cost: float = 0.0
    #: False once any call had no known price: ``cost`` is then a lower bound.
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Hold:
    """The worst case of one call in flight, held against the budget until it is charged."""

    id: int
    tokens: int
    cost: float


class Budget:
    """A cost limit (USD) and/or a token limit for a run; ``None`` means unlimited."""

    def __init__(self, max_cost: float | None = None, max_tokens: int | None = None):
        if max_cost is not None and max_cost < 0:
            raise ValueError("budget max_cost must be >= 0")
        if max_tokens is not None and max_tokens < 0:
            raise ValueError("budget max_tokens must be >= 0")
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.by_role: dict[str, Spend] = {}
        self._held: dict[int, Hold] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    @property
    def total(self) -> Spend:
        total = Spend()
        for s in list(self.by_role.values()):
            total.calls += s.calls
            total.prompt_tokens += s.prompt_tokens
            total.completion_tokens += s.completion_tokens
            total.cached_tokens += s.cached_tokens
            total.prompt_chars += s.prompt_chars
            total.cost += s.cost
            total.cost_known = total.cost_known and s.cost_known
        return total

    def check(self, role: str = "", *, tokens: int = 0, cost: float = 0.0, why: str = "") -> None:
        """Raise :class:`BudgetExceeded` unless a call using up to ``tokens`` tokens and
        costing up to ``cost`` USD fits what is left (after the calls in flight).

        ``why`` says where the worst case comes from, for the message.
        """
        with self._lock:
            total = self.total
            held_tokens = sum(h.tokens for h in self._held.values())
            held_cost = sum(h.cost for h in self._held.values())
        who = f"{role}'s next model call" if role else "the next model call"
        because = f": {why}" if why else ""
        if self.max_cost is not None:
            spent = total.cost + held_cost
            if spent + cost > self.max_cost or (cost == 0 and spent >= self.max_cost > 0):
                left = max(0.0, self.max_cost - spent)
                raise BudgetExceeded(
                    f"budget of ${self.max_cost:.4f} would not cover {who} (worst case "
                    f"${cost:.4f}{because}; ${total.cost:.4f} spent, ${left:.4f} left); "
                    "raise it with --budget"
                )
        if self.max_tokens is not None:
            used = total.total_tokens + held_tokens
            if used + tokens > self.max_tokens or (tokens == 0 and used >= self.max_tokens):
                left = max(0, self.max_tokens - used)
                raise BudgetExceeded(
                    f"token budget of {self.max_tokens} would not cover {who} (worst case "
                    f"{tokens} tokens{because}; {total.total_tokens} used, {left} left); "
                    "raise it with --max-tokens"
                )

    def reserve(self, role: str = "", *, tokens: int = 0, cost: float = 0.0, why: str = "", call: str = "") -> Hold:
        """:meth:`check`, then hold the worst case until :meth:`charge` or :meth:`release`.

        ``call`` names the call within the role (``action#turn``, as transcripts key it). A
        run's own budget does not need it; a budget shared by a batch's tasks
        (:class:`mgpt.agents.runner.PoolBudget`) charges a named call once, however often
        a resumed task replays it."""
        with self._lock:
            self.check(role, tokens=tokens, cost=cost, why=why)
            hold = Hold(next(self._ids), tokens, cost)
            self._held[hold.id] = hold
            return hold

    def release(self, hold: Hold | None) -> None:
        """Drop a hold whose call failed (nothing to charge)."""
        if hold is not None:
            with self._lock:
                self._held.pop(hold.id, None)

    def charge(
        self,
        role: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float | None,
        prompt_chars: int = 0,
        hold: Hold | None = None,
        cached_tokens: int = 0,
    ) -> None:
        """Record one model call (and drop its hold). ``cost=None`` means the price is unknown."""
        with self._lock:
            if hold is not None:
                self._held.pop(hold.id, None)
            spend = self.by_role.setdefault(role, Spend())
            spend.calls += 1
            spend.prompt_tokens += prompt_tokens
            spend.completion_tokens += completion_tokens
            spend.cached_tokens += cached_tokens
            spend.prompt_chars += prompt_chars
            if cost is None:
                spend.cost_known = False
            else:
                spend.cost += cost
