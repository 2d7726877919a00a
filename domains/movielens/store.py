"""A trained retriever in a folder: what ``mgpt recommend`` answers from.

    store = train_store(data)                 # the default retriever -> $MGPT_HOME/recommend/ml-100k-cooc
    store = train_store(data, ItemKNN())      # -> $MGPT_HOME/recommend/ml-100k-itemknn
    store = RecommendStore.load(store.folder)
    store.recommend("196", k=5)        # [Recommendation(item_id='...', title='...', score=...), ...]
    store.history("196")[:3]           # the user's movies, oldest first
    store.score("196", ["50", "181"])  # scores of chosen movies

The folder holds ``store.json`` (format, retriever and settings, the fold it learned from),
``users.json`` and ``items.json`` (ids in index order), ``history.json`` (each user's items
in time order), ``movies.json`` (titles, years, genres) and the scorer's arrays. A store
trained on phase ``all`` learns from every rating (for use); one trained on ``valid`` or
``test`` holds back the items that phase measures.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .data import Movie, MovieLens, mgpt_home
from .embedding import CooccurrenceEmbedding
from .errors import StoreError, UnknownItemError, UnknownUserError
from .retrievers import Retriever, Scorer, describe, load_scorer
from .split import Phase, Split, leave_one_out

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_RETRIEVER", "FORMAT", "Recommendation", "RecommendStore", "default_store_dir", "train_store"]

FORMAT = 1

#: The retriever chosen by measurement on each user's validation item
#: (benchmarks/bench_recommend.py; figures in docs/benchmarks.md): co-occurrence embeddings
#: of the user's last 20 movies, trained by mgpt's contrastive trainer, with the popularity
#: prior. It beat implicit's ALS, ItemKNN and BPR there; it costs minutes of CPU to train
#: where ALS and ItemKNN cost a second.
DEFAULT_RETRIEVER = CooccurrenceEmbedding(mode="sequence", window=20, iters=1000, prior=1.5)


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    title: str
    score: float


def default_store_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    """``$MGPT_HOME/recommend/<name>``."""
    return mgpt_home(os.environ if env is None else env) / "recommend" / name


class RecommendStore:
    """A loaded store: ids, histories, the catalogue and a scorer."""

    def __init__(self, folder: Path, meta: dict, user_ids: list[str], item_ids: list[str],
                 history: list[list[int]], movies: dict[str, Movie], scorer: Scorer):
        self.folder, self.meta, self.scorer = folder, meta, scorer
        self.user_ids, self.item_ids, self.movies = user_ids, item_ids, movies
        self.histories = history
        self.user_index = {u: i for i, u in enumerate(user_ids)}
        self.item_index = {t: i for i, t in enumerate(item_ids)}

    def user(self, user_id: str) -> int:
        try:
            return self.user_index[str(user_id)]
        except KeyError:
            raise UnknownUserError(f"unknown user id {user_id!r}: the store {self.folder} knows "
                                   f"{len(self.user_ids)} users, ids {self.user_ids[0]}..{self.user_ids[-1]}") from None

    def item(self, item_id: str) -> int:
        try:
            return self.item_index[str(item_id)]
        except KeyError:
            raise UnknownItemError(f"unknown movie id {item_id!r}: the store {self.folder} knows "
                                   f"{len(self.item_ids)} movies, ids {self.item_ids[0]}..{self.item_ids[-1]}") from None

    def movie(self, item_id: str) -> Movie:
        self.item(item_id)
        return self.movies.get(str(item_id)) or Movie(str(item_id), "", None, ())

    def history(self, user_id: str) -> list[Movie]:
        """The movies the store learned this user rated, oldest first."""
        return [self.movie(self.item_ids[i]) for i in self.histories[self.user(user_id)]]

    def score(self, user_id: str, item_ids: Sequence[str]) -> list[float]:
        """The retriever's scores of ``item_ids`` for the user (higher: more likely)."""
        columns = [self.item(i) for i in item_ids]
        row = self.scorer.scores(np.array([self.user(user_id)]))[0]
        return [float(row[c]) for c in columns]

    def recommend(self, user_id: str, k: int = 10) -> list[Recommendation]:
        """The ``k`` best-scored movies the user has not rated (by the store's history)."""
        u = self.user(user_id)
        row = self.scorer.scores(np.array([u]))[0].astype(np.float64)
        row[self.histories[u]] = -np.inf
        k = max(0, min(k, int(np.isfinite(row).sum())))
        top = np.argsort(-row, kind="stable")[:k]
        return [Recommendation(self.item_ids[i], self.movie(self.item_ids[i]).title, float(row[i])) for i in top]

    @classmethod
    def load(cls, folder: str | Path) -> RecommendStore:
        folder = Path(folder)
        meta_file = folder / "store.json"
        if not meta_file.is_file():
            raise StoreError(f"{folder} is not a recommendation store (no store.json); train one with train_store()")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise StoreError(f"{folder} has store format {meta.get('format')}, this mgpt reads {FORMAT}: retrain it")
            read = lambda name: json.loads((folder / name).read_text(encoding="utf-8"))  # noqa: E731
            movies = {k: Movie(k, v["title"], v["year"], tuple(v["genres"])) for k, v in read("movies.json").items()}
            users, items, history = read("users.json"), read("items.json"), read("history.json")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{folder}: cannot read the store ({exc}); retrain it") from None
        return cls(folder, meta, users, items, history, movies, load_scorer(folder, meta["scorer"]))


def save_store(folder: Path, split: Split, history: list[np.ndarray], movies: dict[str, Movie], scorer: Scorer,
               meta: dict) -> None:
    """Write a store atomically: a partial folder renamed into place."""
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write = lambda name, value: (partial / name).write_text(json.dumps(value), encoding="utf-8")  # noqa: E731
    write("users.json", split.user_ids)
    write("items.json", split.item_ids)
    write("history.json", [[int(i) for i in h] for h in history])
    write("movies.json", {k: {"title": m.title, "year": m.year, "genres": list(m.genres)} for k, m in movies.items()})
    scorer.save(partial)
    write("store.json", {**meta, "format": FORMAT, "scorer": scorer.kind})
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def train_store(data: MovieLens, retriever: Retriever = DEFAULT_RETRIEVER, *, phase: Phase = "all",
                refit: bool = False, folder: str | Path | None = None) -> RecommendStore:
    """Fit ``retriever`` on ``data``'s split (``phase``: what it learns from, see
    :meth:`Split.fold`) and save it to ``folder`` (default ``$MGPT_HOME/recommend/ml-100k-<name>``)."""
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold(phase, refit=refit)
    started = time.perf_counter()
    scorer = retriever.fit(fold)
    target = Path(folder) if folder is not None else default_store_dir(f"ml-100k-{retriever.name}")
    meta = {**describe(retriever), "phase": phase, "refit": refit, "fit_s": round(time.perf_counter() - started, 2),
            "data": str(data.folder), "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    save_store(target, split, fold.history, data.movies, scorer, meta)
    return RecommendStore.load(target)
