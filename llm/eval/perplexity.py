"""Perplexity of a causal LM on a text file, with a sliding window.

The text is tokenised once. Windows of at most ``block_size`` tokens slide along it,
``stride`` new tokens at a time; each window scores only its new tokens, so every token
after the first is scored exactly once, with up to ``block_size - 1`` tokens of context
before it. Perplexity is ``exp(total NLL / tokens scored)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from mgpt.llm.eval.errors import EvalInputError

__all__ = ["PerplexityResult", "perplexity_and_agreement", "perplexity_of_file", "perplexity_of_text",
           "read_text_file"]


@dataclass
class PerplexityResult:
    """How well a model predicts a text."""

    #: Tokens scored: every token but the first (which is BOS when the tokenizer adds one).
    tokens: int
    #: Mean negative log-likelihood per scored token, in nats.
    nll: float
    #: exp(nll).
    perplexity: float
    #: Window length and step used.
    block_size: int
    stride: int
    #: Forward passes made.
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_text_file(path: str | Path) -> str:
    """The UTF-8 text of ``path``; :class:`EvalInputError` if missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"The text file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"The text file {path} is not UTF-8 text ({exc}).") from None
    if not text.strip():
        raise EvalInputError(f"The text file {path} is empty; perplexity needs some text.")
    return text


def _windows(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over ``n_tokens`` tokens.

    The first window scores positions 1..end-1 (position 0 has no context); each later
    one scores the ``stride`` positions after the previous window's end, looking back
    at most ``block_size`` tokens in all.
    """
    end = min(block_size, n_tokens)
    spans = [(0, end, 1)]
    while end < n_tokens:
        new_end = min(end + stride, n_tokens)
        spans.append((max(0, new_end - block_size), new_end, end))
        end = new_end
    return spans


def perplexity_of_text(
    loaded: Any,
    text: str,
    *,
    block_size: int | None = None,
    stride: int | None = None,
) -> PerplexityResult:
    """Perplexity of ``loaded`` (a :class:`mgpt.llm.local.generate.LoadedModel`) on ``text``.

    ``block_size`` defaults to the model's maximum positions (and may not exceed it);
    ``stride`` defaults to half the block. Smaller strides give each token more context
    and cost more forward passes.
    """
    import torch

    limit = loaded.max_positions
    if block_size is None:
        block_size = limit or 1024
    if limit is not None and block_size > limit:
        raise EvalInputError(f"--block-size {block_size} is longer than the model's {limit} positions.")
    if block_size < 2:
        raise EvalInputError("--block-size must be at least 2 (one token of context, one to score).")
    if stride is None:
        stride = max(1, block_size // 2)
    if not 1 <= stride < block_size:
        # A stride of a whole block would leave each window's first token without context.
        raise EvalInputError(f"--stride must be between 1 and block size - 1 ({block_size - 1}), not {stride}.")

    ids = loaded.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
    if len(ids) < 2:
        raise EvalInputError("The text is a single token; perplexity needs at least two.")
    ids_tensor = torch.tensor(ids, dtype=torch.long, device=loaded.device)

    total_nll = 0.0
    scored = 0
    spans = _windows(len(ids), block_size, stride)
    with torch.no_grad():
        for begin, end, first in spans:
            window = ids_tensor[begin:end].unsqueeze(0)  # (1, T)
            logits = loaded.model(input_ids=window).logits[0]  # (T, vocab); row i predicts token i+1
            # Only the rows predicting this window's new tokens (first..end-1), in float32,
            # so memory is (stride, vocab) rather than (block, vocab).
            new_logits = logits[first - begin - 1 : -1].float()
            targets = window[0, first - begin :]
            total_nll += float(torch.nn.functional.cross_entropy(new_logits, targets, reduction="sum"))
            scored += int(targets.numel())

    mean = total_nll / scored
    return PerplexityResult(
        tokens=scored,
        nll=mean,
        perplexity=math.exp(mean),
        block_size=block_size,
        stride=stride,
        windows=len(spans),
    )


def perplexity_of_file(
    model_dir: str | Path,
    text_file: str | Path,
    *,
    block_size: int | None = None,
    stride: int | None = None,
    device: str | None = None,
) -> PerplexityResult:
    """Load the checkpoint in ``model_dir`` and measure its perplexity on ``text_file``."""
    from mgpt.llm.local.generate import check_checkpoint, load_model

    check_checkpoint(model_dir)  # cheap: report a bad folder before reading anything big
    text = read_text_file(text_file)
    loaded = load_model(model_dir, device=device)
    return perplexity_of_text(loaded, text, block_size=block_size, stride=stride)


def perplexity_and_agreement(logits_of: Callable[[list[int]], Any], windows: Sequence[list[int]],
                             reference_top: list) -> tuple[float, float]:
    """Perplexity over ``windows`` of a decoder whose ``logits_of(ids)`` gives (T, vocab)
    logits (row i predicts token i+1), and its top-1 agreement with ``reference_top``: the
    reference decoder's argmaxes per window. An empty ``reference_top`` makes this decoder
    the reference: its argmaxes are appended and its agreement is 1. For comparing the same
    weights decoded differently (fp32 vs int8, int4).
    """
    import torch

    nll, count, agree = 0.0, 0, 0
    first = not reference_top
    for i, window in enumerate(windows):
        logits = logits_of(window)[:-1]
        target = torch.tensor(window[1:])
        nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        count += len(target)
        top = logits.argmax(-1)
        if first:
            reference_top.append(top)
        agree += int((top == reference_top[i]).sum())
    return math.exp(nll / count), agree / count
