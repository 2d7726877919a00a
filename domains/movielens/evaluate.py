"""Measure a scorer on a fold, by both protocols (full ranking and 99 sampled negatives).

    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("valid")
    result = evaluate(ItemKNN().fit(fold).scores, fold, split)
    result.full.ndcg, result.sampled.recall

``scores`` is any ``users -> (len(users), n_items)`` function, so scores computed elsewhere
(RecBole's, in the benchmark) are measured by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .metrics import Metrics, full_ranks, sample_negatives, sampled_ranks, summarize
from .split import Fold, Split

__all__ = ["Evaluation", "Protocol", "evaluate"]


@dataclass(frozen=True)
class Protocol:
    """The cut-off ``k``, and the sampled protocol's negatives per user and their seed."""

    k: int = 10
    negatives: int = 99
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    full: Metrics
    sampled: Metrics


def evaluate(scores: Callable[[np.ndarray], np.ndarray], fold: Fold, split: Split,
             protocol: Protocol = Protocol(), batch: int = 256) -> Evaluation:
    """Rank each evaluated user's target by ``scores``: among all items less the masked ones
    (full), and among ``protocol.negatives`` items the user never rated (sampled; the same
    negatives for every scorer given the same seed)."""
    users = fold.users
    negatives = sample_negatives(split.sequences, users, fold.n_items, n=protocol.negatives, seed=protocol.seed)
    full, sampled = [], []
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        s = scores(chunk)
        target = fold.target[chunk]
        full.append(full_ranks(s, target, [fold.mask[u] for u in chunk]))
        sampled.append(sampled_ranks(s, target, negatives[start:start + batch]))
    return Evaluation(summarize(np.concatenate(full), protocol.k), summarize(np.concatenate(sampled), protocol.k))
