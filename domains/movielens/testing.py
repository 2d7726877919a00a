"""A tiny MovieLens-shaped catalogue for tests: two tastes, a dozen titled movies, no download.

    data = tiny_movielens()                       # MovieLens: 12 users, 12 movies, 60 ratings
    store = train_store(data, ItemKNN(k=5), phase="test", folder=tmp / "store")

Users ``d0``..``d5`` like the dramas (movies 1-6), ``c0``..``c5`` the comedies (7-12). User
``n`` of a taste rates five of its six movies, starting from the ``n``-th, one a second, so
every movie is in some users' histories and each user has one movie of their taste unrated;
their last rating is the test item, the one before it the validation item. Stars cycle
5, 4, 3, 5, 4. Use it to test a team or a retriever without fetching MovieLens-100K.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import Movie, MovieLens, Ratings

__all__ = ["TINY_TITLES", "tiny_movielens"]

#: Item id -> (title as MovieLens writes it, year, genres).
TINY_TITLES = {
    "1": ("Quiet River, The", 1991, ("Drama",)),
    "2": ("Winter Letters", 1992, ("Drama", "Romance")),
    "3": ("Long Road Home", 1993, ("Drama",)),
    "4": ("Glass Harbour", 1994, ("Drama", "Mystery")),
    "5": ("Last Orchard, The", 1995, ("Drama",)),
    "6": ("Paper Moons", 1996, ("Drama", "Romance")),
    "7": ("Banana Heist", 1991, ("Comedy",)),
    "8": ("Uncle Bob Goes West", 1992, ("Comedy", "Western")),
    "9": ("Pizza Party Panic", 1993, ("Comedy",)),
    "10": ("Disco Dentist", 1994, ("Comedy", "Musical")),
    "11": ("Goat Wedding, A", 1995, ("Comedy", "Romance")),
    "12": ("Robot Roommates", 1996, ("Comedy", "Sci-Fi")),
}


def tiny_movielens(users_per_taste: int = 6) -> MovieLens:
    """The catalogue above and its ratings (see the module's docstring)."""
    rows, t = [], 0
    stars = (5.0, 4.0, 3.0, 5.0, 4.0)
    for taste, first in (("d", 1), ("c", 7)):
        for n in range(users_per_taste):
            for step in range(5):
                rows.append((f"{taste}{n}", str(first + (n + step) % 6), stars[step], float(t)))
                t += 1
    ratings = Ratings([r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], dtype=np.float32),
                      np.array([r[3] for r in rows]))
    movies = {item: Movie(item, title, year, genres) for item, (title, year, genres) in TINY_TITLES.items()}
    return MovieLens(ratings, movies, Path("tiny"))
