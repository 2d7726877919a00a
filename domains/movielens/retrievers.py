"""Candidate retrievers: each learns from a :class:`~.split.Fold` and returns a scorer that
gives every item a score for a known user.

- :class:`Popularity`: how many users rated the item (RecBole's Pop).
- :class:`ItemKNN`: cosine similarity of items' columns of the user-item matrix, the top
  ``k`` neighbours of each item kept; a user's score for an item is the sum of its
  similarities to the items the user rated (RecBole's ItemKNN, same rule and defaults).
- :class:`ImplicitALS` / :class:`ImplicitBPR`: matrix factorisation from the ``implicit``
  library (``pip install 'mgpt[recommend]'``).
- :class:`~.embedding.CooccurrenceEmbedding` (in ``embedding.py``): item embeddings trained
  with mgpt's own contrastive trainer.

A scorer is one of three shapes, each saved to and loaded from a folder: popularity
counts, neighbour weights over the user's history, or user and item vectors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from .errors import MovieLensError, StoreError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from .split import Fold

__all__ = ["FactorScorer", "ImplicitALS", "ImplicitBPR", "ItemKNN", "NeighbourScorer", "Popularity",
           "PopularityScorer", "Retriever", "Scorer", "load_scorer"]


class Scorer(Protocol):
    """Scores of every item for known users (by index)."""

    kind: ClassVar[str]

    def scores(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32."""
        ...

    def save(self, folder: Path) -> None: ...


class Retriever(Protocol):
    """Settings of one retrieval method; ``fit`` learns from a fold's histories."""

    name: ClassVar[str]

    def fit(self, fold: Fold) -> Scorer: ...


@dataclass
class PopularityScorer:
    counts: np.ndarray  # (n_items,)
    kind: ClassVar[str] = "popularity"

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts.astype(np.float32), (len(users), len(self.counts))).copy()

    def save(self, folder: Path) -> None:
        np.save(folder / "counts.npy", self.counts)

    @classmethod
    def load(cls, folder: Path) -> PopularityScorer:
        return cls(np.load(folder / "counts.npy"))


@dataclass
class NeighbourScorer:
    history: sp.csr_matrix  # (n_users, n_items) 0/1
    weights: sp.csr_matrix  # (n_items, n_items): weights[j, i], how much having j speaks for i
    kind: ClassVar[str] = "neighbours"

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history[users] @ self.weights).todense(), dtype=np.float32)

    def save(self, folder: Path) -> None:
        import scipy.sparse as sp

        sp.save_npz(folder / "history.npz", self.history)
        sp.save_npz(folder / "weights.npz", self.weights)

    @classmethod
    def load(cls, folder: Path) -> NeighbourScorer:
        import scipy.sparse as sp

        return cls(sp.load_npz(folder / "history.npz").tocsr(), sp.load_npz(folder / "weights.npz").tocsr())


@dataclass
class FactorScorer:
    user_vectors: np.ndarray  # (n_users, C)
    item_vectors: np.ndarray  # (n_items, C)
    kind: ClassVar[str] = "factors"

    def scores(self, users: np.ndarray) -> np.ndarray:
        return (self.user_vectors[users] @ self.item_vectors.T).astype(np.float32)

    def save(self, folder: Path) -> None:
        np.save(folder / "user_vectors.npy", self.user_vectors)
        np.save(folder / "item_vectors.npy", self.item_vectors)

    @classmethod
    def load(cls, folder: Path) -> FactorScorer:
        return cls(np.load(folder / "user_vectors.npy"), np.load(folder / "item_vectors.npy"))


SCORERS = {c.kind: c for c in (PopularityScorer, NeighbourScorer, FactorScorer)}


def load_scorer(folder: Path, kind: str) -> Scorer:
    if kind not in SCORERS:
        raise StoreError(f"{folder}: unknown scorer kind {kind!r} (known: {', '.join(SCORERS)}); retrain the store")
    try:
        return SCORERS[kind].load(folder)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{folder}: cannot read the {kind} scorer ({exc}); retrain the store") from None


@dataclass(frozen=True)
class Popularity:
    """Items by how many users rated them in the fold's histories."""

    name: ClassVar[str] = "pop"

    def fit(self, fold: Fold) -> PopularityScorer:
        return PopularityScorer(np.asarray(fold.matrix().sum(axis=0)).ravel().astype(np.float32))


@dataclass(frozen=True)
class ItemKNN:
    """RecBole's ItemKNN: ``sim(i, j) = <r_i, r_j> / (|r_i| |r_j| + shrink + 1e-6)`` over the
    items' 0/1 columns; item ``i`` keeps its ``k`` most similar items ``j`` as neighbours, and
    a user's score for ``i`` sums ``sim(i, j)`` over the neighbours ``j`` the user rated.
    Computed dense (items x items), which suits catalogues up to some 20,000 items."""

    k: int = 100
    shrink: float = 0.0
    name: ClassVar[str] = "itemknn"

    def fit(self, fold: Fold) -> NeighbourScorer:
        import scipy.sparse as sp

        if self.k < 1:
            raise MovieLensError(f"ItemKNN k must be at least 1 (got {self.k})")
        r = fold.matrix()
        norms = np.sqrt(np.asarray(r.power(2).sum(axis=0)).ravel())
        sim = np.asarray((r.T @ r).todense(), dtype=np.float32)
        sim /= np.outer(norms, norms) + self.shrink + 1e-6
        np.fill_diagonal(sim, 0.0)
        n = sim.shape[0]
        k = min(self.k, n)
        # Column i keeps its k largest entries: the neighbours j of target item i.
        top = np.argpartition(-sim, k - 1, axis=0)[:k] if k < n else np.tile(np.arange(n)[:, None], (1, n))
        cols = np.broadcast_to(np.arange(n), top.shape)
        values = sim[top, cols]
        keep = values != 0
        weights = sp.csr_matrix((values[keep], (top[keep], cols[keep])), shape=(n, n), dtype=np.float32)
        return NeighbourScorer(fold.matrix(), weights)


def _implicit(module: str) -> Any:
    try:
        import importlib

        return importlib.import_module(f"implicit.cpu.{module}")
    except ImportError:
        raise MovieLensError("the ALS and BPR retrievers need the implicit package: pip install 'mgpt[recommend]'") from None


@dataclass(frozen=True)
class ImplicitALS:
    """Alternating least squares on the 0/1 matrix (``implicit``, Hu et al. 2008)."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    seed: int = 0
    threads: int = 1
    name: ClassVar[str] = "als"

    def fit(self, fold: Fold) -> FactorScorer:
        from threadpoolctl import threadpool_limits

        als = _implicit("als")
        model = als.AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                            iterations=self.iterations, random_state=self.seed, num_threads=self.threads)
        with threadpool_limits(1, "blas"):  # implicit asks for single-threaded BLAS
            model.fit(fold.matrix(), show_progress=False)
        return FactorScorer(np.asarray(model.user_factors), np.asarray(model.item_factors))


@dataclass(frozen=True)
class ImplicitBPR:
    """Bayesian personalised ranking (``implicit``, Rendle et al. 2009), SGD on sampled pairs."""

    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 0
    threads: int = 1
    name: ClassVar[str] = "bpr"

    def fit(self, fold: Fold) -> FactorScorer:
        bpr = _implicit("bpr")
        model = bpr.BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                                regularization=self.regularization, iterations=self.iterations,
                                                random_state=self.seed, num_threads=self.threads)
        model.fit(fold.matrix(), show_progress=False)
        return FactorScorer(np.asarray(model.user_factors), np.asarray(model.item_factors))


def describe(retriever: Retriever) -> dict[str, Any]:
    """The retriever's name and settings, as JSON-ready data."""
    return {"retriever": retriever.name, "settings": json.loads(json.dumps(asdict(retriever), default=str))}
