"""How an answer is decoded: :class:`SamplingParams`, one options object for every local
decoder — :func:`~mgpt.llm.local.generate.generate_text`, the ``hf:`` backend
(:class:`~mgpt.llm.local.model.LocalModel`), the serving engine
(:class:`~mgpt.llm.serve.engine.Engine`) and ``mgpt serve``'s requests — and
:func:`pick_token`, the sampler the lean decoder and the engine share.

Decoding is greedy at ``temperature`` 0; above 0 the logits are divided by the
temperature, cut to the ``top_k`` likeliest tokens and to the smallest set whose
probability reaches ``top_p``, and one token is drawn::

    params = SamplingParams(max_tokens=64, temperature=0.8, top_p=0.95, seed=1)
    generate_text(loaded, "Once upon a time", params)

Nothing here imports torch until a token is picked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Constraint", "SamplingParams", "pick_token"]

#: ``constraint(generated_ids) -> bool tensor [vocab] of allowed tokens, or None``. A
#: constraint may instead offer ``mask_logits(row, generated_ids, remaining)``, masking the
#: row of logits in place knowing the tokens left in the budget (the engine's hook for
#: structured output; see :class:`~mgpt.llm.serve.engine.Engine`).
Constraint = Callable[[list[int]], Any]

#: Keyword arguments that name a field differently: generate-style ``max_new_tokens``
#: (Hugging Face's name) is ``max_tokens`` (OpenAI's, the engine's and serve's).
_ALIASES = {"max_new_tokens": "max_tokens"}
#: Fields for which None, in the older keyword arguments, meant "off".
_OFF = {"top_k": 0, "top_p": 1.0}


@dataclass
class SamplingParams:
    """How one answer is decoded. Each decoder says which fields it honours; one that
    cannot honour a field set away from its default refuses it (see :meth:`unsupported`)."""

    #: The most tokens the answer may have (the model's context may end it sooner).
    max_tokens: int = 256
    #: 0 is greedy; above 0 samples with this temperature.
    temperature: float = 0.0
    #: Keep the smallest set of likeliest tokens whose probability reaches this; 1 is off.
    top_p: float = 1.0
    #: Keep only the ``top_k`` likeliest tokens; 0 is off.
    top_k: int = 0
    #: The answer ends before the first of these strings (which is not included).
    stop: Sequence[str] = ()
    #: Seeds the sampler so an answer repeats; None: each decoder's own default (the
    #: engine draws a fresh seed, generate_text leaves torch's generator as it is).
    seed: int | None = None
    #: Keep going past end-of-sequence tokens (benchmarks want a fixed length).
    ignore_eos: bool = False
    #: A per-request hook that masks the logits (:data:`Constraint`); the engine's way to
    #: structured output (generate_text takes an ``output`` format instead).
    constraint: Constraint | None = None

    def check(self) -> None:
        """Raise ValueError naming the first field with a value no decoder can use."""
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or more")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be 0 (off) or more")

    def with_options(self, **options: Any) -> "SamplingParams":
        """A copy with ``options`` set: field names, or ``max_new_tokens`` for
        ``max_tokens``; ``top_k=None`` and ``top_p=None`` mean off. This keeps the older
        keyword arguments (``generate_text(..., max_new_tokens=40, top_p=0.9)``) working.
        An unknown name raises TypeError, as a misspelt keyword argument would."""
        fields = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in options.items():
            field = _ALIASES.get(name, name)
            if field not in fields:
                raise TypeError(f"unknown sampling option {name!r}: choose from {', '.join(sorted(fields))}")
            if value is None and field in _OFF:
                value = _OFF[field]
            changes[field] = value
        return dataclasses.replace(self, **changes) if changes else self

    def unsupported(self, *names: str) -> list[str]:
        """Which of the fields ``names`` are set away from their defaults (for a decoder
        that cannot honour them to refuse by name)."""
        defaults = SamplingParams()
        return [name for name in names if getattr(self, name) != getattr(defaults, name)]


def pick_token(logits: Any, params: SamplingParams, generator: Any = None) -> int:
    """The next token from one row of logits (``[vocab]``): the argmax at temperature 0,
    else a draw (from ``generator``) after temperature, top-k and top-p.

    top-p keeps a token while the tokens ranked above it hold less than ``top_p`` of the
    probability, so the likeliest token always stays."""
    import torch

    if params.temperature <= 0:
        return int(torch.argmax(logits))
    scores = logits.float() / params.temperature
    if params.top_k and params.top_k < scores.shape[0]:
        kth = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= params.top_p  # [vocab], in rank order
        scores = scores.scatter(0, order, sorted_scores.masked_fill(drop, float("-inf")))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
