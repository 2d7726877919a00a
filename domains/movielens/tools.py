"""A trained store's tools: what a recommender team (or any model with tools) can look up.

:class:`RecommendTools` binds them to one :class:`~.store.RecommendStore`; each public tool is
a plain typed function whose name, docstring and parameters give an LLM its schema
(:meth:`RecommendTools.as_list`), and whose answer is JSON::

    tools = RecommendTools(store)
    tools.user_history("196", last=5)   # [{"item_id": "...", "title": "...", "stars": 4.0, ...}, ...]
    tools.user_tastes("196")            # {"rated": 39, "genres": [...], "favourites": [...]}
    tools.candidates("196", k=20)       # the learned retriever's top 20, best first

The candidates come from the store's learned retriever, never from a model's guess: a team
hands them to its ranker as they are. An unknown user or movie id raises the store's
:class:`~.errors.UnknownUserError` / :class:`~.errors.UnknownItemError`; run as tools, that
becomes an ``Error: ...`` result the model reads.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from .data import Movie
from .errors import MovieLensError
from .store import RecommendStore

__all__ = ["MAX_LIST", "RecommendTools", "movie_record"]

#: The most movies one call returns (a tool result has to fit a prompt).
MAX_LIST = 100


def movie_record(movie: Movie, **extra: Any) -> dict[str, Any]:
    """A movie as JSON data: id, readable title, year, genres, and ``extra`` fields."""
    return {"item_id": movie.item_id, "title": movie.name, "year": movie.year, "genres": list(movie.genres), **extra}


class RecommendTools:
    """The tools over one store. Each method below is a tool (see :meth:`as_list`)."""

    def __init__(self, store: RecommendStore):
        self.store = store

    def user_history(self, user_id: str, last: int = 20) -> list[dict[str, Any]]:
        """The movies a user rated most recently, oldest first, each with its stars (1-5).
        last: how many (1-100)."""
        if not 1 <= last <= MAX_LIST:
            raise MovieLensError(f"last must be between 1 and {MAX_LIST}, not {last}")
        return [movie_record(movie, stars=stars) for movie, stars in self.store.rated(user_id)[-last:]]

    def user_tastes(self, user_id: str, genres: int = 5, favourites: int = 5) -> dict[str, Any]:
        """A user's whole history in brief: how many movies they rated, their most rated
        genres with each one's share of their movies, and their favourites (the best-rated,
        the latest first)."""
        if not (0 <= genres <= MAX_LIST and 0 <= favourites <= MAX_LIST):
            raise MovieLensError(f"genres and favourites must be between 0 and {MAX_LIST}")
        rated = self.store.rated(user_id)
        counts = Counter(g for movie, _ in rated for g in movie.genres)
        # Stable sort of the reversed history: equal stars keep the latest first.
        best = sorted(reversed(rated), key=lambda pair: -pair[1])[:favourites]
        return {
            "rated": len(rated),
            "genres": [{"genre": g, "share": round(n / max(1, len(rated)), 3)} for g, n in counts.most_common(genres)],
            "favourites": [movie_record(movie, stars=stars) for movie, stars in best],
        }

    def candidates(self, user_id: str, k: int = 20) -> list[dict[str, Any]]:
        """The k movies the store's learned retriever scores highest for a user, best first,
        leaving out the movies the user already rated."""
        if not 1 <= k <= MAX_LIST:
            raise MovieLensError(f"k must be between 1 and {MAX_LIST}, not {k}")
        return [movie_record(self.store.movie(r.item_id), score=round(r.score, 6), rank=n)
                for n, r in enumerate(self.store.recommend(user_id, k), 1)]

    def movie(self, item_id: str) -> dict[str, Any]:
        """One movie of the catalogue: title, year and genres."""
        return movie_record(self.store.movie(item_id))

    def as_list(self) -> list[Callable[..., Any]]:
        """The tools, for a role's ``tools`` or a :class:`~mgpt.agents.tools.Toolbox`."""
        return [self.user_history, self.user_tastes, self.candidates, self.movie]
