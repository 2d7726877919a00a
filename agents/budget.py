"""What a run may spend, and what it has spent, per role.

The LLM layer charges every call here and asks :meth:`Budget.check` *before* each call,
so a run stops at the limit instead of after overshooting it by a whole request.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel

from .errors import BudgetExceeded


class Spend(BaseModel):
    """Tokens and cost of one role (or a whole run)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_chars: int = 0
    cost: float = 0.0
    #: False once any call had no known price: ``cost`` is then a lower bound.
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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
        self._lock = threading.Lock()

    @property
    def total(self) -> Spend:
        total = Spend()
        for s in self.by_role.values():
            total.calls += s.calls
            total.prompt_tokens += s.prompt_tokens
            total.completion_tokens += s.completion_tokens
            total.prompt_chars += s.prompt_chars
            total.cost += s.cost
            total.cost_known = total.cost_known and s.cost_known
        return total

    def check(self, role: str = "") -> None:
        """Raise :class:`BudgetExceeded` if no further model call is allowed."""
        total = self.total
        who = f" before {role}'s next model call" if role else ""
        if self.max_cost is not None and total.cost >= self.max_cost:
            raise BudgetExceeded(
                f"budget of ${self.max_cost:.4f} spent (${total.cost:.4f}){who}; "
                "raise it with --budget"
            )
        if self.max_tokens is not None and total.total_tokens >= self.max_tokens:
            raise BudgetExceeded(
                f"token budget of {self.max_tokens} spent ({total.total_tokens}){who}; "
                "raise it with --max-tokens"
            )

    def charge(
        self,
        role: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float | None,
        prompt_chars: int = 0,
    ) -> None:
        """Record one model call. ``cost=None`` means the price is unknown."""
        with self._lock:
            spend = self.by_role.setdefault(role, Spend())
            spend.calls += 1
            spend.prompt_tokens += prompt_tokens
            spend.completion_tokens += completion_tokens
            spend.prompt_chars += prompt_chars
            if cost is None:
                spend.cost_known = False
            else:
                spend.cost += cost
