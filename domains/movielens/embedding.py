"""Item embeddings from co-occurrence, trained with mgpt's own contrastive trainer
(``mgpt train embed``: InfoNCE with in-batch negatives on (query, document) text pairs).

Each item is rendered as its index, `` 241``, and the trainer's byte-level BPE tokenizer,
trained on the pairs, learns every item as a single token. Two kinds of pairs:

- ``pairs``: (an item, the item the same user rated next): classic co-occurrence. A user's
  vector is the mean of the vectors of their last ``window`` items.
- ``sequence``: (the user's last ``window`` items, in time order, as one text; the next
  item): the small transformer reads the history, so it learns order and recency. A
  user's vector is the embedding of their last ``window`` items.

An item's score is the cosine of the user's vector and the item's, divided by the training
temperature, plus ``prior`` times the log of the item's share of the training documents.
The prior undoes what in-batch negatives do: an item is a negative as often as it is
popular, so InfoNCE learns ``log p(item | user) - log p(item)`` (up to a constant), and the
cosine alone ranks rare items too high. ``prior=1`` adds ``log p(item)`` back (the logQ
correction of sampled softmax, Yi et al. 2019); ``prior=0`` is the plain cosine.

Pairs come from the fold's histories only, so no held-out item is ever trained on. After
training the scorer is plain vectors (:class:`~.retrievers.FactorScorer`, the prior as one
more coordinate); the embedder folder stays in ``out_dir`` for inspection.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from .errors import MovieLensError
from .retrievers import FactorScorer

if TYPE_CHECKING:
    from mgpt.llm.eval.retrieval import RetrievalPair

    from .split import Fold

__all__ = ["CooccurrenceEmbedding", "ItemVectors", "item_text", "training_pairs"]


def item_text(item: int) -> str:
    """The word an item index is written as: `` 241``. The byte-level BPE's pre-tokenizer keeps
    a space and a number together, so the tokenizer learns each item as one token."""
    return f" {item}"


def training_pairs(history: list[np.ndarray], mode: str, window: int) -> list[RetrievalPair]:
    """(query, next item) pairs from each user's time-ordered history; ``source`` is the user."""
    from mgpt.llm.eval.retrieval import RetrievalPair

    pairs = []
    for user, items in enumerate(history):
        for t in range(1, len(items)):
            context = items[t - 1:t] if mode == "pairs" else items[max(0, t - window):t]
            pairs.append(RetrievalPair("".join(item_text(i) for i in context), item_text(items[t]), mode, str(user)))
    return pairs


@dataclass(frozen=True)
class CooccurrenceEmbedding:
    """Settings of a co-occurrence embedding trained by ``mgpt.llm.train.embed``: a GPT-2 of
    ``layers`` x ``width`` built from scratch, ``iters`` steps of ``batch_size`` pairs."""

    mode: Literal["pairs", "sequence"] = "sequence"
    window: int = 20
    width: int = 128
    layers: int = 2
    heads: int = 4
    iters: int = 1000
    batch_size: int = 128
    lr: float = 3e-3
    temperature: float = 0.05
    prior: float = 1.0
    """Weight of the log-popularity prior added to the scaled cosine (see the module's doc)."""
    seed: int = 0
    threads: int = 1
    out_dir: str | None = None
    """Where the embedder is trained and kept (default: a temporary folder, removed after)."""
    name: ClassVar[str] = "cooc"

    def run_config(self, n_items: int, out_dir: Path):
        """The trainer's RunConfig for these settings."""
        from mgpt.llm.train.config import RunConfig

        max_length = 4 if self.mode == "pairs" else self.window + 4  # an item is one token
        return RunConfig.model_validate({
            "model": {"family": "gpt2", "n_layer": self.layers, "n_head": self.heads, "n_embd": self.width},
            # Room for every item as one token: its " i<id>" word and the prefixes BPE merges on the way.
            "tokenizer": {"kind": "bytebpe", "vocab_size": 2 * n_items + 512},
            "optim": {"lr": self.lr, "min_lr": self.lr / 10, "weight_decay": 0.0},
            "schedule": {"warmup_iters": min(100, self.iters // 10)},
            # No hard negatives: the trainer draws them from the same source, here the same
            # user, whose other items are positives, not negatives. Evaluation is ours.
            "embed": {"temperature": self.temperature, "hard_negatives": False, "max_length": max_length,
                      "normalize": False, "val_fraction": 0.0},
            "batch_size": self.batch_size, "max_iters": self.iters, "log_interval": max(1, self.iters // 10),
            "seed": self.seed, "threads": self.threads, "out_dir": str(out_dir), "device": "cpu",
        })

    def fit(self, fold: Fold) -> FactorScorer:
        return self.vectors(fold).scorer(self.prior)

    def vectors(self, fold: Fold) -> ItemVectors:
        """Train the embedder on the fold and embed its users and items."""
        if self.mode not in ("pairs", "sequence") or self.window < 1:
            raise MovieLensError(f"cooc needs mode pairs or sequence and window >= 1 (got {self.mode}, {self.window})")
        if self.out_dir:
            return self._vectors_in(fold, Path(self.out_dir))
        with tempfile.TemporaryDirectory(prefix="mgpt-cooc-") as tmp:
            return self._vectors_in(fold, Path(tmp))

    def _vectors_in(self, fold: Fold, out_dir: Path) -> ItemVectors:
        from mgpt.llm.local.embedder import load_embedder
        from mgpt.llm.train.embed import train_embed

        pairs = training_pairs(fold.history, self.mode, self.window)
        if len(pairs) < 2:
            raise MovieLensError("too few ratings to train item embeddings: each user needs two or more")
        train_embed(self.run_config(fold.n_items, out_dir), progress=False, pairs=pairs)
        embedder = load_embedder(out_dir)
        items = embedder.encode([item_text(i) for i in range(fold.n_items)]).numpy()
        if self.mode == "pairs":
            users = np.stack([_mean_unit(items[h[-self.window:]]) if len(h) else np.zeros(items.shape[1])
                              for h in fold.history])
        else:
            queries = ["".join(item_text(i) for i in h[-self.window:]) for h in fold.history]
            users = embedder.encode(queries).numpy()
            users[[len(h) == 0 for h in fold.history]] = 0.0  # no history: no preference
        docs = np.bincount([h[t] for h in fold.history for t in range(1, len(h))], minlength=fold.n_items)
        log_share = np.log((docs + 1) / (docs.sum() + fold.n_items))  # add-one: unseen items stay finite
        return ItemVectors(users, items, log_share, self.temperature)


@dataclass(frozen=True)
class ItemVectors:
    """What the trained embedder gives: unit user and item vectors, each item's log share of
    the training documents, and the temperature the cosines were trained at."""

    users: np.ndarray
    items: np.ndarray
    log_share: np.ndarray
    temperature: float

    def scorer(self, prior: float) -> FactorScorer:
        """``cos(u, i) / temperature + prior * log_share[i]`` as one dot product."""
        users = np.hstack([self.users / self.temperature, np.ones((len(self.users), 1))])
        items = np.hstack([self.items, prior * self.log_share[:, None]])
        return FactorScorer(users.astype(np.float32), items.astype(np.float32))


def _mean_unit(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-9)
