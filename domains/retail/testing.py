"""A tiny retail store for tests, made by hand (no download): two customers, two products
(a T-shirt and a mug, three variants each, one unavailable), five orders.

- ``ann_lee_1`` (email ``Ann.Lee@example.com``, zip 10001; a credit card, a gift card with
  50.00, a PayPal account): ``#W1`` pending (T-shirt blue + mug 300ml, credit card),
  ``#W2`` delivered (two red T-shirts + mug 500ml, PayPal), ``#W3`` processed, ``#W4``
  pending (paid with the gift card);
- ``bob_kim_2`` (``bob@example.com``, zip 94105; a gift card with 5.00): ``#W5`` pending.

:func:`tiny_data` writes it as a whole retail data folder (store, two tasks, a short policy).
Use it to test your own support roles offline::

    from mgpt.domains.retail import RetailStore
    from mgpt.domains.retail.testing import tiny_store_json

    store = RetailStore.from_json(tiny_store_json())
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

__all__ = [
    "MUG_300", "MUG_500", "SHIRT_BLUE", "SHIRT_RED", "TINY", "TINY_POLICY", "TINY_TASKS", "tiny_data", "tiny_store_json",
]


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




def tiny_store_json() -> dict[str, Any]:
    """The tiny store's contents, a fresh copy each call (``RetailStore.from_json`` it)."""
    return copy.deepcopy(TINY)


#: Two tasks on the tiny store, in τ²-bench's task shape: "1" (test) cancels Ann's pending
#: order #W1; "2" (train) returns her delivered mug of #W2 to PayPal and must say the refund.
TINY_TASKS: list[dict[str, Any]] = [
    {
        "id": "1",
        "user_scenario": {"persona": None, "instructions": {
            "domain": "retail", "reason_for_call": "You want to cancel your order #W1: you no longer need it.",
            "known_info": "You are Ann Lee, email ann.lee@example.com.", "unknown_info": None,
            "task_instructions": "Confirm with yes when asked."}},
        "evaluation_criteria": {"actions": [
            {"action_id": "1_0", "name": "find_user_id_by_email", "arguments": {"email": "ann.lee@example.com"}},
            {"action_id": "1_1", "name": "cancel_pending_order",
             "arguments": {"order_id": "#W1", "reason": "no longer needed"}},
        ], "communicate_info": []},
    },
    {
        "id": "2",
        "user_scenario": {"persona": "Brief and polite.", "instructions": {
            "domain": "retail", "reason_for_call": "You want to return the mug of order #W2, refunded to PayPal.",
            "known_info": "You are Ann Lee, zip 10001.", "unknown_info": "You do not remember your email.",
            "task_instructions": "Ask how much you will get back."}},
        "evaluation_criteria": {"actions": [
            {"action_id": "2_0", "name": "find_user_id_by_name_zip",
             "arguments": {"first_name": "Ann", "last_name": "Lee", "zip": "10001"}},
            {"action_id": "2_1", "name": "return_delivered_order_items",
             "arguments": {"order_id": "#W2", "item_ids": ["3000000002"], "payment_method_id": "paypal_1"}},
        ], "communicate_info": ["12.34"]},
    },
]

TINY_POLICY = """# Tiny store policy
Authenticate the customer by email, or by name and zip, first. Help one customer per conversation.
Before any change (cancel, modify, return, exchange) list the details and get an explicit yes.
"""


def tiny_data(folder: str | Path) -> Any:
    """A :class:`~mgpt.domains.retail.RetailData` in ``folder`` holding the tiny store, its
    two tasks (``test``: "1", ``train``: "2") and a short policy: the whole retail data shape,
    offline."""
    import json

    from .data import RetailData

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db.json").write_text(json.dumps(tiny_store_json()), encoding="utf-8")
    (folder / "tasks.json").write_text(json.dumps(TINY_TASKS), encoding="utf-8")
    (folder / "split_tasks.json").write_text(json.dumps({"test": ["1"], "train": ["2"], "base": ["1", "2"]}),
                                             encoding="utf-8")
    (folder / "policy.md").write_text(TINY_POLICY, encoding="utf-8")
    return RetailData(folder)
