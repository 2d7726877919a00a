"""Prices, so token usage becomes money, and the worst case of a call before it is made.

Prices are USD per million tokens (input, output), and optionally a third figure: cached
input, what a prompt token the provider read from its prompt cache costs
(:data:`DEFAULT_CACHED_PRICES` holds the published ones; where none is known a cached token
costs what any prompt token does, which never under-counts). A model missing from the table has an
unknown cost: its tokens are still counted and the run says the cost is unknown rather
than pretending it was free — but a budget in USD for such a model is refused
(:func:`require_price`), since it could not be kept. Local backends (``test``, ``hf``, ``local``) cost
nothing. A replay is priced as the model it recorded (:func:`priced_as`), so a replayed run
shows what the recorded one cost, and a budget stops it where it stopped the original.

Before each call the budget is asked whether the call's worst case fits
(:func:`worst_case`): the prompt's tokens, estimated from its characters, plus the most
completion tokens the model may return in one call (:func:`call_cap`).
"""

from __future__ import annotations

import math
from typing import Any

from mgpt.llm.backends.base import ChatMessage, Usage
from mgpt.llm.errors import ModelConfigError

#: USD per 1M tokens: (prompt, completion). Published list prices; override per run with
#: ``PriceTable({...})`` or the ``[prices]`` table of the config file.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}

#: USD per 1M cached prompt tokens, as OpenAI publishes them (half the prompt price for the
#: gpt-4o family, a quarter for gpt-4.1, o3 and o4-mini, a tenth for gpt-5). A price given
#: in the config (``"model" = [prompt, completion, cached]``) overrides these.
DEFAULT_CACHED_PRICES: dict[str, float] = {
    "gpt-4o": 1.25,
    "gpt-4o-mini": 0.075,
    "gpt-4.1": 0.50,
    "gpt-4.1-mini": 0.10,
    "gpt-4.1-nano": 0.025,
    "o3": 0.50,
    "o4-mini": 0.275,
    "gpt-5": 0.125,
    "gpt-5-mini": 0.025,
    "gpt-5-nano": 0.005,
}

#: Backends whose calls cost nothing.
FREE_PREFIXES = ("test", "function", "replay:", "hf:", "local:")

#: Prompt tokens per character assumed before a run has measured its own ratio: one token
#: per 3 characters, on the safe side of English prose (~4) and code (~3-3.5) for BPE tokenizers.
DEFAULT_TOKENS_PER_CHAR = 1 / 3
#: Tokens a chat template adds per message (role markers, separators).
TOKENS_PER_MESSAGE = 4


class UnknownPriceError(ModelConfigError):
    """A budget in USD was set for a model whose price is unknown."""


class PriceTable:
    """Looks up a model's price by its name (``openai:gpt-4o-mini`` or ``gpt-4o-mini``).

    ``prices`` maps a name to ``(prompt, completion)`` or ``(prompt, completion, cached)``."""

    def __init__(self, prices: dict[str, tuple[float, ...]] | None = None):
        self.prices = dict(DEFAULT_PRICES)
        self.cached = dict(DEFAULT_CACHED_PRICES)
        for name, value in (prices or {}).items():
            self.prices[name] = (float(value[0]), float(value[1]))
            if len(value) > 2:
                self.cached[name] = float(value[2])
            else:
                self.cached.pop(name, None)  # a new price without a cached one: no stale ratio

    def _family(self, model_name: str) -> str | None:
        """The name ``model_name`` is priced under: itself, or the family of a dated
        snapshot ("gpt-4o-mini-2024-07-18" costs what gpt-4o-mini costs)."""
        bare = model_name.split(":", 1)[1] if model_name.startswith("openai:") else model_name
        if bare in self.prices:
            return bare
        return next((name for name in sorted(self.prices, key=len, reverse=True) if bare.startswith(name + "-")), None)

    def price(self, model_name: str) -> tuple[float, float] | None:
        if model_name.startswith(FREE_PREFIXES):
            return (0.0, 0.0)
        family = self._family(model_name)
        return self.prices[family] if family is not None else None

    def cached_price(self, model_name: str) -> float | None:
        """USD per 1M cached prompt tokens: the published cached price, else the prompt
        price (None when the model has no known price at all)."""
        price = self.price(model_name)
        if price is None:
            return None
        if model_name.startswith(FREE_PREFIXES):
            return 0.0
        cached = self.cached.get(self._family(model_name) or "")
        return price[0] if cached is None else cached

    def cost(self, model_name: str, usage: Usage) -> float | None:
        """USD for ``usage`` (its cached prompt tokens at the cached price), or ``None``
        when the model's price is unknown."""
        price = self.price(model_name)
        if price is None:
            return None
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.cached_price(model_name)
        assert cached_price is not None
        fresh = usage.prompt_tokens - cached
        return (fresh * price[0] + cached * cached_price + usage.completion_tokens * price[1]) / 1_000_000


def priced_as(model: Any) -> str:
    """The name a model is priced by: a replay's is the recorded model's (``priced_as``)."""
    return getattr(model, "priced_as", "") or model.name


def call_cap(model: Any) -> int | None:
    """The most completion tokens ``model`` returns in one call, or None if it sets no cap
    (a custom model, :class:`~mgpt.llm.backends.testing.FunctionModel`): a budget then has only the
    prompt to go by."""
    for attribute in ("max_tokens", "max_new_tokens"):
        cap = getattr(model, attribute, None)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            return cap
    return None


def estimate_prompt_tokens(messages: list[ChatMessage], tokens_per_char: float = DEFAULT_TOKENS_PER_CHAR) -> int:
    """Tokens ``messages`` will take, estimated from their length (no tokenizer at hand)."""
    chars = sum(len(m.content) for m in messages)
    return math.ceil(chars * tokens_per_char) + TOKENS_PER_MESSAGE * len(messages)


def worst_case(
    messages: list[ChatMessage], cap: int | None, price: tuple[float, float] | None, tokens_per_char: float
) -> tuple[int, int, float | None]:
    """(estimated prompt tokens, completion cap, worst cost in USD or None if unpriced)."""
    prompt = estimate_prompt_tokens(messages, tokens_per_char)
    completion = cap or 0
    cost = None if price is None else (prompt * price[0] + completion * price[1]) / 1_000_000
    return prompt, completion, cost


def require_price(model_name: str, prices: PriceTable, *, config_path: str = "") -> tuple[float, float]:
    """The price of ``model_name``, or :class:`UnknownPriceError` saying how to add one.

    Called when a budget is set in USD: a cost that cannot be computed cannot be bounded.
    """
    price = prices.price(model_name)
    if price is not None:
        return price
    bare = model_name.split(":", 1)[1] if model_name.startswith("openai:") else model_name
    where = f"the config file ({config_path})" if config_path else "the config file (~/.config/mgpt/config.toml)"
    raise UnknownPriceError(
        f"--budget is in USD but mgpt knows no price for {model_name}: add its price under [prices] "
        f'in {where}, e.g. "{bare}" = [0.15, 0.60] (USD per 1M prompt and completion tokens; '
        "[0, 0] for a free local server), or bound the run with --max-tokens instead"
    )
