"""Leave-one-out by time, exactly as RecBole 1.2.1 splits (``eval_args: {split: {LS:
valid_and_test}, order: TO, group_by: user}``).

Each user's ratings are put in time order; the last is the test item, the one before it the
validation item, the rest are training. "Time order" is RecBole's, which is not the raw
timestamps' order: RecBole min-max scales every float field and stores it as float32, so
neighbouring seconds can become one value, then sorts stably, so equal values keep the
file's order. On MovieLens-100K 415 of 943 users have such ties at their latest
timestamp, and sorting by raw seconds picks RecBole's test item for only 939 of them;
:func:`recbole_order` picks it for all 943 (``benchmarks/bench_recommend.py`` checks this
against RecBole itself).

A user with 2 ratings has a test item and no validation item; a user with 1 has neither
(RecBole's rule; every MovieLens-100K user has at least 20).

A :class:`Fold` is what a retriever learns from and is measured on::

    split = leave_one_out(load_movielens().ratings)
    fold = split.fold("valid")      # learn from train, find each user's validation item
    fold = split.fold("test")       # learn from train, find the test item (RecBole's protocol)
    fold = split.fold("test", refit=True)   # learn from train + validation, find the test item
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from .errors import MovieLensError, UnknownItemError, UnknownUserError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from .data import Ratings

__all__ = ["Fold", "Phase", "Split", "leave_one_out", "recbole_order"]

Phase = Literal["valid", "test", "all"]


def recbole_order(timestamps: np.ndarray) -> np.ndarray:
    """Indices that put ratings in RecBole's time order: by ``float32((t - min) / (max - min))``,
    stable, so ratings with the same scaled value stay in file order."""
    t = np.asarray(timestamps, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = t.min(), t.max()
    scaled = np.ones_like(t) if hi == lo else (t - lo) / (hi - lo)  # RecBole sets a constant field to 1.0
    return np.argsort(scaled.astype(np.float32), kind="stable")


def natural_key(token: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order, before any other ids in text order."""
    return (0, int(token)) if token.isdigit() else (1, token)


@dataclass(frozen=True)
class Fold:
    """One evaluation setting. Per user (by index): ``history``, the time-ordered items a
    retriever learns from and scores with; ``mask``, the items full ranking leaves out (the
    user's train and validation items, as RecBole masks for general models); ``target``,
    the item to find (-1: the user is not evaluated here)."""

    phase: Phase
    refit: bool
    n_items: int
    history: list[np.ndarray]
    mask: list[np.ndarray]
    target: np.ndarray

    @property
    def users(self) -> np.ndarray:
        """Indices of the users this fold evaluates."""
        return np.flatnonzero(self.target >= 0)

    def matrix(self) -> sp.csr_matrix:
        """The (users, items) 0/1 matrix of ``history``."""
        return rows_matrix(self.history, self.n_items)


def rows_matrix(rows: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """A 0/1 csr matrix with row ``u`` set at the items of ``rows[u]``."""
    import scipy.sparse as sp

    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(list(rows)) if rows else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0  # a re-rated item counts once
    return m


@dataclass(frozen=True)
class Split:
    """Users' rating sequences in RecBole's time order, and the items they index.

    ``sequences[u]`` holds item indices (into ``item_ids``) of user ``user_ids[u]``.
    """

    user_ids: list[str]
    item_ids: list[str]
    sequences: list[np.ndarray]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_user_index", {u: i for i, u in enumerate(self.user_ids)})
        object.__setattr__(self, "_item_index", {t: i for i, t in enumerate(self.item_ids)})

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_index[str(user_id)]  # type: ignore[attr-defined]
        except KeyError:
            raise UnknownUserError(f"unknown user id {user_id!r}: the data has {len(self.user_ids)} users, "
                                   f"ids {self.user_ids[0]}..{self.user_ids[-1]}") from None

    def item_index(self, item_id: str) -> int:
        try:
            return self._item_index[str(item_id)]  # type: ignore[attr-defined]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}: the catalogue has {len(self.item_ids)} movies, "
                                   f"ids {self.item_ids[0]}..{self.item_ids[-1]}") from None

    def held_out(self, user: int) -> int:
        """How many of the user's last items are held out: 2 (valid, test), 1 (test) or 0."""
        return min(2, len(self.sequences[user]) - 1)

    def train(self, user: int) -> np.ndarray:
        seq = self.sequences[user]
        return seq[: len(seq) - self.held_out(user)]

    def valid(self, user: int) -> int:
        return int(self.sequences[user][-2]) if self.held_out(user) == 2 else -1

    def test(self, user: int) -> int:
        return int(self.sequences[user][-1]) if self.held_out(user) >= 1 else -1

    def fold(self, phase: Phase, *, refit: bool = False) -> Fold:
        """``valid``: learn from train, find the validation item. ``test``: learn from train
        (``refit``: train + validation), find the test item; train and validation items are
        masked either way. ``all``: learn from everything, no target (a store for use)."""
        if phase not in ("valid", "test", "all"):
            raise MovieLensError(f"unknown phase {phase!r}: use valid, test or all")
        users = range(len(self.user_ids))
        if phase == "all":
            history = list(self.sequences)
            return Fold(phase, False, self.n_items, history, history, np.full(len(history), -1, dtype=np.int64))
        if phase == "valid":
            history = [self.train(u) for u in users]
            target = np.array([self.valid(u) for u in users], dtype=np.int64)
            return Fold(phase, False, self.n_items, history, history, target)
        seen = [self.sequences[u][: len(self.sequences[u]) - 1] if self.held_out(u) else self.sequences[u]
                for u in users]
        target = np.array([self.test(u) for u in users], dtype=np.int64)
        # As RecBole: the items masked are the user's earlier items less the target itself.
        mask = [np.setdiff1d(s, [t]) if t >= 0 else s for s, t in zip(seen, target)]
        history = seen if refit else [self.train(u) for u in users]
        return Fold(phase, refit, self.n_items, history, mask, target)


def leave_one_out(ratings: Ratings, item_ids: Sequence[str] | None = None) -> Split:
    """Split ``ratings`` by RecBole's time order. ``item_ids`` fixes the item index (the
    catalogue's ids; items rated but not listed are added after them); by default the rated
    items in natural order."""
    order = recbole_order(ratings.timestamps)
    items = list(item_ids) if item_ids is not None else sorted(set(ratings.item_ids), key=natural_key)
    known = set(items)
    items += sorted({i for i in ratings.item_ids if i not in known}, key=natural_key)
    item_index = {t: i for i, t in enumerate(items)}
    per_user: dict[str, list[int]] = {}
    for k in order:
        per_user.setdefault(ratings.user_ids[k], []).append(item_index[ratings.item_ids[k]])
    user_ids = sorted(per_user, key=natural_key)
    if not user_ids:
        raise MovieLensError("no ratings to split")
    return Split(user_ids, items, [np.array(per_user[u], dtype=np.int64) for u in user_ids])
