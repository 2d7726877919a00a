"""Fixtures of the domains' tests: the real MovieLens-100K, fetched once per session."""

from __future__ import annotations

import os

import pytest

#: The environment before tests/conftest.py moves MGPT_HOME to a temporary folder: the data is
#: fetched into (or found in) the real cache, once, and only read after that.
REAL_ENV = dict(os.environ)


@pytest.fixture(scope="session")
def movielens():
    """MovieLens-100K from the ``recbole`` wheel (pip downloads it on first use); the tests
    that need it skip, saying why, when it cannot be fetched."""
    from mgpt.domains.movielens.data import load_movielens, fetch_movielens
    from mgpt.domains.movielens.errors import MovieLensError

    try:
        folder = fetch_movielens(env=REAL_ENV)
    except MovieLensError as exc:
        pytest.skip(f"MovieLens-100K is not available: {exc}")
    return load_movielens(folder)


@pytest.fixture(scope="session")
def movielens_split(movielens):
    from mgpt.domains.movielens.split import leave_one_out

    return leave_one_out(movielens.ratings, list(movielens.movies))
