"""Ranking metrics for one held-out item per user: NDCG@k, Recall@k, MRR.

With one relevant item, Recall@k is the hit rate (is it in the top k), NDCG@k is
``1 / log2(rank + 1)`` when ``rank <= k`` and 0 otherwise, and MRR is ``1 / rank`` over the
whole ranking (``mrr_at_k`` cuts it at k, as RecBole's ``MRR@10`` does).

Two protocols:

- **full ranking**: the target is ranked against every item except the user's masked ones
  (their train and validation items, as RecBole masks for its general models);
- **sampled**: the target is ranked against 99 items the user never rated, drawn uniformly
  with a fixed seed (the protocol LLM rankers in papers report; it flatters every model).

Ties are counted against the target (a tied item ranks above it), so a model that scores
everything equally ranks every target last, not first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .errors import MovieLensError

__all__ = ["Metrics", "full_ranks", "sample_negatives", "sampled_ranks", "summarize"]


@dataclass(frozen=True)
class Metrics:
    """Means over ``users`` evaluated users, each in [0, 1]."""

    ndcg: float
    recall: float
    mrr: float
    mrr_at_k: float
    k: int
    users: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def full_ranks(scores: np.ndarray, target: np.ndarray, mask: Sequence[np.ndarray]) -> np.ndarray:
    """1-based rank of ``target[b]`` among the items of row ``scores[b]`` (B, N) that are
    not in ``mask[b]``: one plus the unmasked items scoring at least as high (ties count
    against the target)."""
    scores = np.array(scores, dtype=np.float64)  # a copy: masked entries are overwritten
    target = np.asarray(target, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(target) or len(mask) != len(target):
        raise MovieLensError(f"scores {scores.shape}, targets {target.shape} and {len(mask)} masks do not match")
    rows = np.arange(len(target))
    own = scores[rows, target]
    for b, items in enumerate(mask):
        if len(items) and np.any(np.asarray(items) == target[b]):
            raise MovieLensError(f"row {b}: the target item {target[b]} is masked; it cannot be ranked")
        scores[b, items] = -np.inf
    scores[rows, target] = -np.inf  # the target itself is not "another item"
    return 1 + (scores >= own[:, None]).sum(axis=1)


def sample_negatives(rated: Sequence[np.ndarray], users: np.ndarray, n_items: int, *, n: int = 99,
                     seed: int = 0) -> np.ndarray:
    """(len(users), n) item indices, per user drawn uniformly without replacement from the
    items that user never rated (``rated[u]``: all their items, the held-out ones included).
    The same seed gives the same negatives."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(users), n), dtype=np.int64)
    for row, u in enumerate(users):
        pool = np.setdiff1d(np.arange(n_items), rated[u])
        if len(pool) < n:
            raise MovieLensError(f"user index {u} rated all but {len(pool)} items; cannot sample {n} negatives")
        out[row] = rng.choice(pool, size=n, replace=False)
    return out


def sampled_ranks(scores: np.ndarray, target: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """1-based rank of ``target[b]`` among itself and ``negatives[b]`` (ties against it)."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(target))
    own = scores[rows, np.asarray(target)]
    return 1 + (scores[rows[:, None], negatives] >= own[:, None]).sum(axis=1)


def summarize(ranks: np.ndarray, k: int = 10) -> Metrics:
    """NDCG@k, Recall@k (hit rate), MRR and MRR@k from 1-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        raise MovieLensError("no users to evaluate")
    if np.any(ranks < 1):
        raise MovieLensError("ranks are 1-based: got a rank below 1")
    hit = ranks <= k
    return Metrics(
        ndcg=float(np.mean(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0))),
        recall=float(np.mean(hit)),
        mrr=float(np.mean(1.0 / ranks)),
        mrr_at_k=float(np.mean(np.where(hit, 1.0 / ranks, 0.0))),
        k=k,
        users=len(ranks),
    )
