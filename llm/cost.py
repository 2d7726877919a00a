"""Prices, so token usage becomes money.

Prices are USD per million tokens (input, output). A model missing from the table has an
unknown cost: its tokens are still counted and the run says the cost is unknown rather
than pretending it was free. Local backends (``test``, ``replay``, ``hf``) cost nothing.
"""

from __future__ import annotations

from .base import Usage

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

#: Backends whose calls cost nothing.
FREE_PREFIXES = ("test", "function", "replay:", "hf:")


class PriceTable:
    """Looks up a model's price by its name (``openai:gpt-4o-mini`` or ``gpt-4o-mini``)."""

    def __init__(self, prices: dict[str, tuple[float, float]] | None = None):
        self.prices = dict(DEFAULT_PRICES)
        if prices:
            self.prices.update({k: (float(v[0]), float(v[1])) for k, v in prices.items()})

    def price(self, model_name: str) -> tuple[float, float] | None:
        if model_name.startswith(FREE_PREFIXES):
            return (0.0, 0.0)
        bare = model_name.split(":", 1)[1] if model_name.startswith("openai:") else model_name
        if bare in self.prices:
            return self.prices[bare]
        # Dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs.
        for name in sorted(self.prices, key=len, reverse=True):
            if bare.startswith(name + "-"):
                return self.prices[name]
        return None

    def cost(self, model_name: str, usage: Usage) -> float | None:
        """USD for ``usage``, or ``None`` when the model's price is unknown."""
        price = self.price(model_name)
        if price is None:
            return None
        return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1_000_000
