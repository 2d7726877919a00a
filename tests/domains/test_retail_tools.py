"""The retail tools, one scripted request at a time: what each changes, and what each refuses
(a refusal gives the service's error and changes nothing)."""

from __future__ import annotations

import inspect
import json
import typing

import pytest

from mgpt.domains.retail import TOOL_NAMES, WRITE_TOOLS, RetailError, RetailTools


@pytest.fixture
def tools(tiny_store) -> RetailTools:
    return RetailTools(tiny_store)


def refused(tools: RetailTools, name: str, arguments: dict, message: str) -> None:
    """The call gets ``Error: <message>`` and the store is unchanged."""
    before = tools.store.state_hash()
    reply = tools.call(name, arguments)
    assert reply.error and reply.content == f"Error: {message}", reply
    assert tools.store.state_hash() == before


def order(tools: RetailTools, order_id: str) -> dict:
    return tools.get_order_details(order_id)


def balance(tools: RetailTools, user_id: str, method_id: str) -> float:
    return tools.get_user_details(user_id)["payment_methods"][method_id]["balance"]


# --- the tool list ------------------------------------------------------------------------


def test_tools_are_typed_documented_bound_methods(tools):
    listed = tools.as_list()
    assert [t.__name__ for t in listed] == list(TOOL_NAMES) and len(listed) == 15
    assert WRITE_TOOLS < set(TOOL_NAMES)
    for tool in listed:
        assert inspect.ismethod(tool) and tool.__self__ is tools
        assert tool.__doc__ and len(tool.__doc__.split()) > 8, tool.__name__
        hints = typing.get_type_hints(tool)
        params = inspect.signature(tool).parameters
        assert "self" not in params and all(name in hints for name in params), tool.__name__
        for name in params:
            assert f"{name}:" in tool.__doc__, f"{tool.__name__} does not document {name}"


def test_unknown_tool_and_malformed_arguments_are_tool_errors(tools):
    refused(tools, "refund_everything", {}, "Tool 'refund_everything' not found.")
    for name, arguments, where in [
        ("get_order_details", {}, "order_id: Missing required argument"),
        ("get_order_details", {"order_id": 17}, "order_id: Input should be a valid string"),
        ("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed", "refund": "double"},
         "refund: Unexpected keyword argument"),
        ("return_delivered_order_items", {"order_id": "#W2", "item_ids": "2000000002", "payment_method_id": "paypal_1"},
         "item_ids: Input should be a valid list"),
    ]:
        before = tools.store.state_hash()
        reply = tools.call(name, arguments)
        assert reply.error and reply.rejected and reply.content == f"Error: invalid arguments for {name}: {where}"
        assert tools.store.state_hash() == before
    assert tools.call("get_order_details", ["#W1"]).content.startswith("Error: the arguments")
    assert not tools.call("get_order_details", {"order_id": "#W404"}).rejected  # it reached the store


# --- finding the customer and looking up --------------------------------------------------


def test_find_user_by_email_ignores_case(tools):
    assert tools.find_user_id_by_email("ann.lee@EXAMPLE.com") == "ann_lee_1"
    assert tools.call("find_user_id_by_email", {"email": "bob@example.com"}).content == "bob_kim_2"
    refused(tools, "find_user_id_by_email", {"email": "nobody@example.com"}, "User not found")


def test_find_user_by_name_and_zip_needs_the_right_zip(tools):
    assert tools.find_user_id_by_name_zip("ann", "LEE", "10001") == "ann_lee_1"
    refused(tools, "find_user_id_by_name_zip", {"first_name": "Ann", "last_name": "Lee", "zip": "10002"},
            "User not found")


def test_lookups(tools):
    assert tools.get_user_details("bob_kim_2")["payment_methods"]["gift_card_2"]["balance"] == 5.0
    assert order(tools, "#W2")["status"] == "delivered"
    assert set(tools.get_product_details("1000000002")["variants"]) == {"3000000001", "3000000002", "3000000003"}
    assert json.loads(tools.list_all_product_types()) == {"Mug": "1000000002", "T-Shirt": "1000000001"}
    refused(tools, "get_order_details", {"order_id": "W1"}, "Order not found")
    refused(tools, "get_user_details", {"user_id": "carl"}, "User not found")
    refused(tools, "get_product_details", {"product_id": "2000000001"}, "Product not found")


def test_replies_are_json_records(tools):
    reply = tools.call("get_order_details", {"order_id": "#W1"})
    assert not reply.error and json.loads(reply.content) == order(tools, "#W1")
    assert reply.content.startswith('{"order_id": "#W1", "user_id": "ann_lee_1", "address": {')


# --- cancel -------------------------------------------------------------------------------


def test_cancel_refunds_a_card_later_and_a_gift_card_at_once(tools):
    cancelled = tools.cancel_pending_order("#W1", "no longer needed")
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "no longer needed"
    assert cancelled["payment_history"][-1] == {"transaction_type": "refund", "amount": 30.0,
                                               "payment_method_id": "credit_card_1"}
    assert balance(tools, "ann_lee_1", "gift_card_1") == 50.0
    tools.cancel_pending_order("#W4", "ordered by mistake")
    assert balance(tools, "ann_lee_1", "gift_card_1") == 70.0


def test_cancel_only_pending_orders_for_an_accepted_reason(tools):
    refused(tools, "cancel_pending_order", {"order_id": "#W2", "reason": "no longer needed"},
            "Non-pending order cannot be cancelled")
    refused(tools, "cancel_pending_order", {"order_id": "#W3", "reason": "no longer needed"},
            "Non-pending order cannot be cancelled")
    refused(tools, "cancel_pending_order", {"order_id": "#W1", "reason": "found it cheaper"}, "Invalid reason")
    refused(tools, "cancel_pending_order", {"order_id": "#W404", "reason": "no longer needed"}, "Order not found")
    tools.cancel_pending_order("#W1", "no longer needed")
    refused(tools, "cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"},
            "Non-pending order cannot be cancelled")


# --- modify a pending order ---------------------------------------------------------------


ADDRESS = {"address1": "9 Elm St", "address2": "Apt 2", "city": "Austin", "state": "TX", "country": "USA", "zip": "73301"}


def test_modify_the_address_of_a_pending_order(tools):
    changed = tools.modify_pending_order_address("#W1", **ADDRESS)
    assert changed["address"] == {k: ADDRESS[k] for k in ("address1", "address2", "city", "country", "state", "zip")}
    assert tools.get_user_details("ann_lee_1")["address"]["zip"] == "10001"  # the user's default is another thing
    refused(tools, "modify_pending_order_address", {"order_id": "#W2", **ADDRESS}, "Non-pending order cannot be modified")
    refused(tools, "modify_pending_order_address", {"order_id": "#W3", **ADDRESS}, "Non-pending order cannot be modified")


def test_modify_payment_charges_the_new_method_and_refunds_the_old(tools):
    changed = tools.modify_pending_order_payment("#W1", "gift_card_1")
    assert changed["status"] == "pending"
    assert changed["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": 30.0, "payment_method_id": "gift_card_1"},
        {"transaction_type": "refund", "amount": 30.0, "payment_method_id": "credit_card_1"},
    ]
    assert balance(tools, "ann_lee_1", "gift_card_1") == 20.0
    # Now the order has three transactions: its payment cannot change again.
    refused(tools, "modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "paypal_1"},
            "There should be exactly one payment for a pending order")


def test_modify_payment_refunds_an_old_gift_card_at_once(tools):
    tools.modify_pending_order_payment("#W4", "paypal_1")
    assert balance(tools, "ann_lee_1", "gift_card_1") == 70.0


def test_modify_payment_refusals(tools):
    refused(tools, "modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "credit_card_1"},
            "The new payment method should be different from the current one")
    refused(tools, "modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "gift_card_2"},
            "Payment method not found")  # Bob's gift card is not Ann's
    refused(tools, "modify_pending_order_payment", {"order_id": "#W2", "payment_method_id": "credit_card_1"},
            "Non-pending order cannot be modified")
    tools.cancel_pending_order("#W4", "no longer needed")  # gift card 50 -> 70
    tools.modify_pending_order_items("#W1", ["3000000001"], ["3000000003"], "credit_card_1")  # total now 45.0
    refused(tools, "modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "gift_card_1"},
            "There should be exactly one payment for a pending order")


def test_modify_payment_to_a_gift_card_that_cannot_cover_it(tiny_json):
    from mgpt.domains.retail import RetailStore

    tiny_json["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["balance"] = 29.99
    tools = RetailTools(RetailStore.from_json(tiny_json))
    refused(tools, "modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "gift_card_1"},
            "Insufficient gift card balance to pay for the order")


def test_modify_items_swaps_within_the_product_and_settles_the_difference(tools):
    changed = tools.modify_pending_order_items("#W1", ["2000000001"], ["2000000002"], "gift_card_1")
    assert changed["status"] == "pending (item modified)"
    assert changed["items"][0] == {"name": "T-Shirt", "product_id": "1000000001", "item_id": "2000000002",
                                   "price": 22.5, "options": {"color": "red", "size": "M"}}
    assert changed["payment_history"][-1] == {"transaction_type": "payment", "amount": 2.5,
                                              "payment_method_id": "gift_card_1"}
    assert balance(tools, "ann_lee_1", "gift_card_1") == 47.5
    # Once only: the order is no longer 'pending'. Its address can still change (τ²-bench's tool).
    refused(tools, "modify_pending_order_items",
            {"order_id": "#W1", "item_ids": ["3000000001"], "new_item_ids": ["3000000002"],
             "payment_method_id": "credit_card_1"}, "Non-pending order cannot be modified")
    refused(tools, "cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"},
            "Non-pending order cannot be cancelled")
    assert tools.modify_pending_order_address("#W1", **ADDRESS)["address"]["city"] == "Austin"


def test_modify_items_to_a_cheaper_item_is_a_refund(tiny_json):
    from mgpt.domains.retail import RetailStore

    w4 = tiny_json["orders"]["#W4"]  # paid 22.50 with Ann's gift card, for a red shirt
    w4["items"] = [{"name": "T-Shirt", "product_id": "1000000001", "item_id": "2000000002", "price": 22.5,
                    "options": {"color": "red", "size": "M"}}]
    w4["payment_history"][0]["amount"] = 22.5
    tools = RetailTools(RetailStore.from_json(tiny_json))
    changed = tools.modify_pending_order_items("#W4", ["2000000002"], ["2000000001"], "gift_card_1")
    assert changed["payment_history"][-1] == {"transaction_type": "refund", "amount": 2.5,
                                              "payment_method_id": "gift_card_1"}
    assert balance(tools, "ann_lee_1", "gift_card_1") == 52.5


def test_modify_items_refusals(tools):
    def items(item_ids, new_item_ids, method="credit_card_1", order_id="#W1"):
        return {"order_id": order_id, "item_ids": item_ids, "new_item_ids": new_item_ids, "payment_method_id": method}

    refused(tools, "modify_pending_order_items", items(["2000000001"], ["3000000002"]), "Variant not found")  # a mug
    refused(tools, "modify_pending_order_items", items(["2000000001"], ["2000000003"]),
            "New item 2000000003 not found or available")
    refused(tools, "modify_pending_order_items", items(["2000000001"], ["2000000001"]),
            "The new item id should be different from the old item id")
    refused(tools, "modify_pending_order_items", items(["2000000001", "2000000001"], ["2000000002", "2000000002"]),
            "2000000001 not found")  # the order holds one
    refused(tools, "modify_pending_order_items", items(["2000000001"], ["2000000002", "3000000002"]),
            "The number of items to be exchanged should match")
    refused(tools, "modify_pending_order_items", items(["2000000001"], ["2000000002"], method="paypal_9"),
            "Payment method not found")
    refused(tools, "modify_pending_order_items", items(["3000000001"], ["3000000003"], "gift_card_2", "#W5"),
            "Insufficient gift card balance to pay for the new item")  # 15.00 more, 5.00 on the card
    refused(tools, "modify_pending_order_items", items(["2000000002"], ["2000000001"], order_id="#W2"),
            "Non-pending order cannot be modified")


def test_modify_several_items_keeps_taus_quirk(tools):
    """τ²-bench's tool gives every modified item the price and options of the last new item;
    its expected end states (5 of 114 tasks) depend on it, so ours does the same."""
    changed = tools.modify_pending_order_items("#W1", ["2000000001", "3000000001"], ["2000000002", "3000000002"],
                                               "credit_card_1")
    assert [it["item_id"] for it in changed["items"]] == ["2000000002", "3000000002"]
    assert [it["price"] for it in changed["items"]] == [12.34, 12.34]
    assert changed["items"][0]["options"] == {"capacity": "500ml"}
    # The difference is still the real one: 2.5 + 2.34.
    assert changed["payment_history"][-1]["amount"] == pytest.approx(4.84)


# --- returns and exchanges of delivered orders ---------------------------------------------


def test_return_to_the_original_method_or_a_gift_card(tools):
    returned = tools.return_delivered_order_items("#W2", ["2000000002", "2000000002"], "paypal_1")
    assert returned["status"] == "return requested"
    assert returned["return_items"] == ["2000000002", "2000000002"]
    assert returned["return_payment_method_id"] == "paypal_1"
    other = RetailTools(tools.store.copy())
    assert other.get_order_details("#W2")["status"] == "return requested"


def test_return_refund_to_a_gift_card(tiny_store):
    tools = RetailTools(tiny_store)
    returned = tools.return_delivered_order_items("#W2", ["3000000002", "2000000002"], "gift_card_1")
    assert returned["return_items"] == ["2000000002", "3000000002"]  # sorted
    assert returned["return_payment_method_id"] == "gift_card_1"


def test_return_refusals(tools):
    refused(tools, "return_delivered_order_items",
            {"order_id": "#W2", "item_ids": ["2000000002"], "payment_method_id": "credit_card_1"},
            "Payment method should be the original payment method")
    refused(tools, "return_delivered_order_items",
            {"order_id": "#W2", "item_ids": ["2000000002"] * 3, "payment_method_id": "paypal_1"},
            "Some item not found")
    refused(tools, "return_delivered_order_items",
            {"order_id": "#W1", "item_ids": ["2000000001"], "payment_method_id": "credit_card_1"},
            "Non-delivered order cannot be returned")
    refused(tools, "return_delivered_order_items",
            {"order_id": "#W2", "item_ids": ["2000000002"], "payment_method_id": "gift_card_2"},
            "Payment method not found")
    tools.return_delivered_order_items("#W2", ["2000000002"], "paypal_1")
    refused(tools, "return_delivered_order_items",  # once per order
            {"order_id": "#W2", "item_ids": ["3000000002"], "payment_method_id": "paypal_1"},
            "Non-delivered order cannot be returned")


def test_exchange_within_the_same_product(tools):
    changed = tools.exchange_delivered_order_items("#W2", ["2000000002", "3000000002"], ["2000000001", "3000000001"],
                                                   "paypal_1")
    assert changed["status"] == "exchange requested"
    assert changed["exchange_items"] == ["2000000002", "3000000002"]
    assert changed["exchange_new_items"] == ["2000000001", "3000000001"]
    assert changed["exchange_price_difference"] == -4.84  # rounded to cents
    assert changed["exchange_payment_method_id"] == "paypal_1"
    assert [it["item_id"] for it in changed["items"]] == ["2000000002", "2000000002", "3000000002"]  # until returned


def test_exchange_refusals(tools):
    def exchange(item_ids, new_item_ids, method="paypal_1", order_id="#W2"):
        return {"order_id": order_id, "item_ids": item_ids, "new_item_ids": new_item_ids, "payment_method_id": method}

    refused(tools, "exchange_delivered_order_items", exchange(["2000000002"], ["3000000001"]),
            "Variant not found")  # a shirt for a mug
    refused(tools, "exchange_delivered_order_items", exchange(["2000000002"], ["2000000003"]),
            "New item 2000000003 not found or available")
    refused(tools, "exchange_delivered_order_items", exchange(["2000000001"], ["2000000002"]),
            "Number of 2000000001 not found.")
    refused(tools, "exchange_delivered_order_items", exchange(["2000000002"], []),
            "The number of items to be exchanged should match.")
    refused(tools, "exchange_delivered_order_items", exchange(["2000000001"], ["2000000002"], order_id="#W1"),
            "Non-delivered order cannot be exchanged")
    refused(tools, "exchange_delivered_order_items", exchange(["3000000002"], ["3000000003"], method="credit_card_9"),
            "Payment method not found")


def test_exchange_paid_by_a_gift_card_that_cannot_cover_it(tiny_json):
    from mgpt.domains.retail import RetailStore

    tiny_json["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["balance"] = 12.0
    tools = RetailTools(RetailStore.from_json(tiny_json))
    refused(tools, "exchange_delivered_order_items",
            {"order_id": "#W2", "item_ids": ["3000000002"], "new_item_ids": ["3000000003"],
             "payment_method_id": "gift_card_1"},
            "Insufficient gift card balance to pay for the price difference")  # 12.66 more


# --- the profile, and the rest --------------------------------------------------------------


def test_modify_the_default_address(tools):
    changed = tools.modify_user_address("bob_kim_2", **ADDRESS)
    assert changed["address"]["city"] == "Austin" and changed["user_id"] == "bob_kim_2"
    assert order(tools, "#W5")["address"]["city"] == "Springfield"  # orders keep theirs
    refused(tools, "modify_user_address", {"user_id": "bob", **ADDRESS}, "User not found")


def test_calculate_and_transfer(tools):
    assert tools.calculate("(54.04 + 12.5) * 2") == "133.08"
    assert tools.call("calculate", {"expression": " 10 / 4"}).content == "2.5"
    refused(tools, "calculate", {"expression": "__import__('os')"}, "Invalid characters in expression")
    refused(tools, "calculate", {"expression": "1/0"}, "division by zero")
    refused(tools, "calculate", {"expression": "(1 + 2"}, "'(' was never closed (<string>, line 1)")
    refused(tools, "calculate", {"expression": "9**9**9"}, "Exponent too large (at most 10000)")
    assert tools.transfer_to_human_agents("wants a refund in cash") == "Transfer successful"
