"""Retail fixtures: a tiny hand-made store (no download) and τ²-bench's real one.

The real data is fetched once per machine into the real ``$MGPT_HOME`` by the session
fixture (``python3 -m mgpt.domains.retail.data`` does the same ahead of time); the tests that
need it skip, saying why, where it cannot be fetched."""

from __future__ import annotations

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
