"""The retail store: users, products and orders in SQLite, one transaction per request.

The store is loaded from τ²-bench's ``db.json`` (or any file of that shape) into tables,
in memory or in a file that you name. Reads and writes go through :meth:`RetailStore.transaction`:
a request either commits whole or, when it raises, leaves nothing behind. Records come back as
plain dicts with the fields, in the order, that τ²-bench's retail service returns them, so an
agent sees the same data in either store and the two can be compared by hash
(:meth:`RetailStore.state_hash`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import Annotated, TypedDict

from .errors import RetailDataError, RetailError

__all__ = [
    "ORDER_STATUSES", "Address", "Order", "OrderItem", "Payment", "PaymentMethod", "Product",
    "RetailStore", "User", "Variant",
]

ORDER_STATUSES = (
    "processed", "pending", "pending (item modified)", "delivered", "cancelled",
    "exchange requested", "return requested",
)

# --- the records (field order is the service's answer order) ------------------------------


class Variant(TypedDict):
    """One item of a product: its options (``{"color": "blue"}``), stock and price."""

    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(TypedDict):
    name: str
    product_id: str
    #: Item id -> variant.
    variants: dict[str, Variant]


class Address(TypedDict):
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class UserName(TypedDict):
    first_name: str
    last_name: str


class CreditCard(TypedDict):
    source: Literal["credit_card"]
    id: str
    brand: str
    last_four: str


class GiftCard(TypedDict):
    source: Literal["gift_card"]
    id: str
    balance: float


class Paypal(TypedDict):
    source: Literal["paypal"]
    id: str


PaymentMethod = Annotated[Union[CreditCard, GiftCard, Paypal], Field(discriminator="source")]


class User(TypedDict):
    user_id: str
    name: UserName
    address: Address
    email: str
    #: Payment method id -> method.
    payment_methods: dict[str, PaymentMethod]
    #: The user's order ids.
    orders: list[str]


class OrderItem(TypedDict):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class Fulfillment(TypedDict):
    tracking_id: list[str]
    item_ids: list[str]


class Payment(TypedDict):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class Order(TypedDict):
    order_id: str
    user_id: str
    address: Address
    items: list[OrderItem]
    status: Literal[ORDER_STATUSES]  # type: ignore[valid-type]
    fulfillments: list[Fulfillment]
    payment_history: list[Payment]
    cancel_reason: Optional[Literal["no longer needed", "ordered by mistake"]]
    exchange_items: Optional[list[str]]
    exchange_new_items: Optional[list[str]]
    exchange_payment_method_id: Optional[str]
    exchange_price_difference: Optional[float]
    return_items: Optional[list[str]]
    return_payment_method_id: Optional[str]


class _OrderIn(BaseModel):
    """An order as a file gives it: the optional fields may be left out."""

    model_config = ConfigDict(extra="ignore")
    order_id: str
    user_id: str
    address: Address
    items: list[OrderItem]
    status: Literal[ORDER_STATUSES]  # type: ignore[valid-type]
    fulfillments: list[Fulfillment]
    payment_history: list[Payment]
    cancel_reason: Optional[Literal["no longer needed", "ordered by mistake"]] = None
    exchange_items: Optional[list[str]] = None
    exchange_new_items: Optional[list[str]] = None
    exchange_payment_method_id: Optional[str] = None
    exchange_price_difference: Optional[float] = None
    return_items: Optional[list[str]] = None
    return_payment_method_id: Optional[str] = None


class _StoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    products: dict[str, Product]
    users: dict[str, User]
    orders: dict[str, _OrderIn]


_ADDRESS = ("address1", "address2", "city", "country", "state", "zip")

SCHEMA = f"""
CREATE TABLE products (
    product_id TEXT PRIMARY KEY, name TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE variants (
    product_id TEXT NOT NULL REFERENCES products, item_id TEXT NOT NULL, options TEXT NOT NULL,
    available INTEGER NOT NULL, price REAL NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (product_id, item_id));
CREATE TABLE users (
    user_id TEXT PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    {", ".join(f"{c} TEXT NOT NULL" for c in _ADDRESS)}, email TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE payment_methods (
    user_id TEXT NOT NULL REFERENCES users, method_id TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('credit_card', 'gift_card', 'paypal')),
    brand TEXT, last_four TEXT, balance REAL, position INTEGER NOT NULL,
    PRIMARY KEY (user_id, method_id));
CREATE TABLE user_orders (
    user_id TEXT NOT NULL REFERENCES users, order_id TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (user_id, position));
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users,
    {", ".join(f"{c} TEXT NOT NULL" for c in _ADDRESS)},
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in ORDER_STATUSES)})),
    cancel_reason TEXT, exchange_items TEXT, exchange_new_items TEXT, exchange_payment_method_id TEXT,
    exchange_price_difference REAL, return_items TEXT, return_payment_method_id TEXT,
    position INTEGER NOT NULL);
CREATE TABLE order_items (
    order_id TEXT NOT NULL REFERENCES orders, position INTEGER NOT NULL, name TEXT NOT NULL,
    product_id TEXT NOT NULL, item_id TEXT NOT NULL, price REAL NOT NULL, options TEXT NOT NULL,
    PRIMARY KEY (order_id, position));
CREATE TABLE fulfillments (
    order_id TEXT NOT NULL REFERENCES orders, position INTEGER NOT NULL,
    tracking_ids TEXT NOT NULL, item_ids TEXT NOT NULL, PRIMARY KEY (order_id, position));
CREATE TABLE payments (
    order_id TEXT NOT NULL REFERENCES orders, position INTEGER NOT NULL,
    transaction_type TEXT NOT NULL CHECK (transaction_type IN ('payment', 'refund')),
    amount REAL NOT NULL, payment_method_id TEXT NOT NULL, PRIMARY KEY (order_id, position));
CREATE INDEX users_email ON users (email);
CREATE INDEX orders_user ON orders (user_id);
"""

_TABLE_KEYS = (
    ("products", "product_id"), ("variants", "product_id, item_id"), ("users", "user_id"),
    ("payment_methods", "user_id, method_id"), ("user_orders", "user_id, position"), ("orders", "order_id"),
    ("order_items", "order_id, position"), ("fulfillments", "order_id, position"), ("payments", "order_id, position"),
)

#: JSON-encoded columns (lists and option maps keep their order).
_JSON_LISTS = ("exchange_items", "exchange_new_items", "return_items")


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _loads(text: Optional[str]) -> Any:
    return None if text is None else json.loads(text)


@lru_cache(maxsize=4096)
def _parsed(text: str) -> Any:
    return json.loads(text)


def _flat(text: str) -> Any:
    """A JSON option map or list of ids (flat, of strings): parsed once per distinct text, a
    fresh copy each time (snapshots read thousands of them)."""
    parsed = _parsed(text)
    return dict(parsed) if isinstance(parsed, dict) else list(parsed)


class RetailStore:
    """A retail store in one SQLite database (in memory unless ``path`` names a file).

    Thread-safe: requests from several threads run one at a time. Build one with
    :meth:`from_json` (the contents of ``db.json``) or :meth:`open` (a store file written
    before), and take an independent copy with :meth:`copy`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.create_function("py_lower", 1, lambda s: None if s is None else str(s).lower(), deterministic=True)
        self._lock = threading.RLock()
        #: Hashes by kind, remembered with the version of the data they were taken from.
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}

    # --- building -----------------------------------------------------------------------

    @classmethod
    def _connect(cls, path: str | Path | None) -> sqlite3.Connection:
        return sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None,
                               check_same_thread=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | Path | None = None) -> "RetailStore":
        """A store holding ``data`` (``{"products", "users", "orders"}``, the shape of τ²-bench's
        ``db.json``), in memory or in a new file at ``path``."""
        try:
            checked = _StoreIn.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RetailDataError(f"the store data is not in the retail shape: {where}: {first['msg']}") from None
        if path is not None and Path(path).exists():
            raise RetailDataError(f"{path} exists already: open it with RetailStore.open, or name a new file")
        store = cls(cls._connect(path))
        with store.transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            _insert_all(db, checked)
        return store

    @classmethod
    def open(cls, path: str | Path) -> "RetailStore":
        """A store file written before (by :meth:`from_json` with a path, or :meth:`save`)."""
        if not Path(path).is_file():
            raise RetailDataError(f"no store file {path}")
        store = cls(cls._connect(path))
        try:
            store._db.execute("SELECT 1 FROM orders LIMIT 1")
        except sqlite3.DatabaseError as exc:
            store.close()
            raise RetailDataError(f"{path} is not a retail store ({exc})") from None
        return store

    def copy(self, path: str | Path | None = None) -> "RetailStore":
        """An independent store with the same contents (SQLite's backup: milliseconds)."""
        target = self._connect(path)
        with self._lock:
            self._db.backup(target)
        return RetailStore(target)

    def save(self, path: str | Path) -> None:
        """Write the store to a file (which :meth:`open` reads)."""
        target = sqlite3.connect(str(path))
        try:
            with self._lock:
                self._db.backup(target)
        finally:
            target.close()

    def close(self) -> None:
        self._db.close()

    # --- requests -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One request: everything done inside commits together, or, if it raises, not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- the whole state ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole store as ``{"products", "users", "orders"}``, in τ²-bench's shape (every
        optional order field present, ``None`` when unset)."""
        with self.transaction() as db:
            return _read_all(db)

    def state_hash(self) -> str:
        """sha256 of the snapshot as canonical JSON (sorted keys), which is how τ²-bench hashes
        its store: the same state gives the same hash in either. About 0.2 s; to compare two
        stores of mgpt's, :meth:`digest` is ten times cheaper."""
        return self._remembered("state", lambda db: json.dumps(_read_all(db), sort_keys=True, default=str))

    def digest(self) -> str:
        """sha256 of every table's rows in key order: equal contents, equal digests (positions
        and the JSON text of options included, so equal digests mean equal snapshots)."""
        def rows(db: sqlite3.Connection) -> str:
            cursor = db.cursor()
            cursor.row_factory = None  # plain tuples: their repr is exact for floats, and quick
            return "\n".join(repr(cursor.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall())
                             for table, key in _TABLE_KEYS)
        return self._remembered("rows", rows)

    def _remembered(self, kind: str, text: Any) -> str:
        with self.transaction() as db:
            # Kept until a row changes (through this connection, or, for a file, another).
            version = (self._db.total_changes, db.execute("PRAGMA data_version").fetchone()[0])
            if kind not in self._hashes or self._hashes[kind][0] != version:
                self._hashes[kind] = (version, hashlib.sha256(text(db).encode()).hexdigest())
            return self._hashes[kind][1]


# --- loading ------------------------------------------------------------------------------


def _insert_all(db: sqlite3.Connection, data: _StoreIn) -> None:
    for pos, (pid, prod) in enumerate(data.products.items()):
        db.execute("INSERT INTO products VALUES (?, ?, ?)", (pid, prod["name"], pos))
        db.executemany(
            "INSERT INTO variants VALUES (?, ?, ?, ?, ?, ?)",
            [(pid, iid, _dumps(v["options"]), int(v["available"]), v["price"], i)
             for i, (iid, v) in enumerate(prod["variants"].items())],
        )
    for pos, (uid, u) in enumerate(data.users.items()):
        db.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (uid, u["name"]["first_name"], u["name"]["last_name"], *(u["address"][c] for c in _ADDRESS),
             u["email"], pos),
        )
        db.executemany(
            "INSERT INTO payment_methods VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(uid, mid, m["source"], m.get("brand"), m.get("last_four"), m.get("balance"), i)
             for i, (mid, m) in enumerate(u["payment_methods"].items())],
        )
        db.executemany("INSERT INTO user_orders VALUES (?, ?, ?)", [(uid, oid, i) for i, oid in enumerate(u["orders"])])
    for pos, (oid, o) in enumerate(data.orders.items()):
        db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (oid, o.user_id, *(o.address[c] for c in _ADDRESS), o.status, o.cancel_reason,
             *(None if v is None else _dumps(v) for v in (o.exchange_items, o.exchange_new_items)),
             o.exchange_payment_method_id, o.exchange_price_difference,
             None if o.return_items is None else _dumps(o.return_items), o.return_payment_method_id, pos),
        )
        set_items(db, oid, o.items)
        db.executemany(
            "INSERT INTO fulfillments VALUES (?, ?, ?, ?)",
            [(oid, i, _dumps(f["tracking_id"]), _dumps(f["item_ids"])) for i, f in enumerate(o.fulfillments)],
        )
        add_payments(db, oid, o.payment_history)


# --- reading and writing records (inside a transaction) ----------------------------------


def _address(row: sqlite3.Row) -> Address:
    return {c: row[c] for c in _ADDRESS}  # type: ignore[return-value]


def _variant_record(v: sqlite3.Row) -> Variant:
    return {"item_id": v["item_id"], "options": _flat(v["options"]), "available": bool(v["available"]),
            "price": v["price"]}


def _product_record(row: sqlite3.Row, variants: list[sqlite3.Row]) -> Product:
    return {"name": row["name"], "product_id": row["product_id"],
            "variants": {v["item_id"]: _variant_record(v) for v in variants}}


def read_product(db: sqlite3.Connection, product_id: str) -> Product:
    """The product with its variants; ``Product not found`` when there is none."""
    row = db.execute("SELECT * FROM products WHERE product_id = ?", (product_id,)).fetchone()
    if row is None:
        raise RetailError("Product not found")
    variants = db.execute("SELECT * FROM variants WHERE product_id = ? ORDER BY position", (product_id,))
    return _product_record(row, list(variants))


def read_variant(db: sqlite3.Connection, product_id: str, item_id: str) -> Variant:
    """One item of a product: ``Product not found`` or ``Variant not found`` when missing."""
    if db.execute("SELECT 1 FROM products WHERE product_id = ?", (product_id,)).fetchone() is None:
        raise RetailError("Product not found")
    v = db.execute("SELECT * FROM variants WHERE product_id = ? AND item_id = ?", (product_id, item_id)).fetchone()
    if v is None:
        raise RetailError("Variant not found")
    return _variant_record(v)


def _payment_method(row: sqlite3.Row) -> PaymentMethod:
    if row["source"] == "credit_card":
        return {"source": "credit_card", "id": row["method_id"], "brand": row["brand"], "last_four": row["last_four"]}
    if row["source"] == "gift_card":
        return {"source": "gift_card", "id": row["method_id"], "balance": row["balance"]}
    return {"source": "paypal", "id": row["method_id"]}


def _user_record(row: sqlite3.Row, methods: list[sqlite3.Row], orders: list[sqlite3.Row]) -> User:
    return {
        "user_id": row["user_id"], "name": {"first_name": row["first_name"], "last_name": row["last_name"]},
        "address": _address(row), "email": row["email"],
        "payment_methods": {m["method_id"]: _payment_method(m) for m in methods},
        "orders": [r["order_id"] for r in orders],
    }


def read_user(db: sqlite3.Connection, user_id: str) -> User:
    """The user's profile, payment methods and order ids; ``User not found`` when unknown."""
    row = db.execute("SELECT * FROM users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        raise RetailError("User not found")
    methods = db.execute("SELECT * FROM payment_methods WHERE user_id = ? ORDER BY position", (user_id,))
    orders = db.execute("SELECT order_id FROM user_orders WHERE user_id = ? ORDER BY position", (user_id,))
    return _user_record(row, list(methods), list(orders))


def read_payment_method(db: sqlite3.Connection, user_id: str, method_id: str) -> PaymentMethod:
    """One of the user's payment methods: ``User not found`` / ``Payment method not found``."""
    if db.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone() is None:
        raise RetailError("User not found")
    row = db.execute(
        "SELECT * FROM payment_methods WHERE user_id = ? AND method_id = ?", (user_id, method_id)).fetchone()
    if row is None:
        raise RetailError("Payment method not found")
    return _payment_method(row)


def set_gift_card_balance(db: sqlite3.Connection, user_id: str, method_id: str, balance: float) -> None:
    db.execute("UPDATE payment_methods SET balance = ? WHERE user_id = ? AND method_id = ?",
               (balance, user_id, method_id))


def _order_record(
    row: sqlite3.Row, items: list[sqlite3.Row], fulfillments: list[sqlite3.Row], payments: list[sqlite3.Row]
) -> Order:
    return {  # type: ignore[return-value]
        "order_id": row["order_id"], "user_id": row["user_id"], "address": _address(row),
        "items": [{"name": i["name"], "product_id": i["product_id"], "item_id": i["item_id"], "price": i["price"],
                   "options": _flat(i["options"])} for i in items],
        "status": row["status"],
        "fulfillments": [{"tracking_id": _flat(f["tracking_ids"]), "item_ids": _flat(f["item_ids"])}
                         for f in fulfillments],
        "payment_history": [{"transaction_type": p["transaction_type"], "amount": p["amount"],
                             "payment_method_id": p["payment_method_id"]} for p in payments],
        "cancel_reason": row["cancel_reason"],
        "exchange_items": _loads(row["exchange_items"]), "exchange_new_items": _loads(row["exchange_new_items"]),
        "exchange_payment_method_id": row["exchange_payment_method_id"],
        "exchange_price_difference": row["exchange_price_difference"],
        "return_items": _loads(row["return_items"]), "return_payment_method_id": row["return_payment_method_id"],
    }


def read_order(db: sqlite3.Connection, order_id: str) -> Order:
    """The order with its items, fulfilments and payments; ``Order not found`` when unknown."""
    row = db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    if row is None:
        raise RetailError("Order not found")
    parts = [list(db.execute(f"SELECT * FROM {table} WHERE order_id = ? ORDER BY position", (order_id,)))
             for table in ("order_items", "fulfillments", "payments")]
    return _order_record(row, *parts)


def _grouped(db: sqlite3.Connection, table: str, key: str) -> dict[str, list[sqlite3.Row]]:
    """All rows of ``table`` by ``key``, each group in position order."""
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in db.execute(f"SELECT * FROM {table} ORDER BY {key}, position"):
        groups.setdefault(row[key], []).append(row)
    return groups


def _read_all(db: sqlite3.Connection) -> dict[str, Any]:
    """Every record, a few queries in all (a snapshot of the store)."""
    variants = _grouped(db, "variants", "product_id")
    products = {r["product_id"]: _product_record(r, variants.get(r["product_id"], []))
                for r in db.execute("SELECT * FROM products ORDER BY position")}
    methods, user_orders = _grouped(db, "payment_methods", "user_id"), _grouped(db, "user_orders", "user_id")
    users = {r["user_id"]: _user_record(r, methods.get(r["user_id"], []), user_orders.get(r["user_id"], []))
             for r in db.execute("SELECT * FROM users ORDER BY position")}
    parts = [_grouped(db, table, "order_id") for table in ("order_items", "fulfillments", "payments")]
    orders = {r["order_id"]: _order_record(r, *(p.get(r["order_id"], []) for p in parts))
              for r in db.execute("SELECT * FROM orders ORDER BY position")}
    return {"products": products, "users": users, "orders": orders}


def update_order(db: sqlite3.Connection, order_id: str, **fields: Any) -> None:
    """Set columns of an order (status, cancel_reason, exchange_* and return_* fields)."""
    allowed = {"status", "cancel_reason", "exchange_payment_method_id", "exchange_price_difference",
               "return_payment_method_id", *_JSON_LISTS}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not an order field that requests change: {sorted(unknown)}")
    values = [_dumps(v) if k in _JSON_LISTS and v is not None else v for k, v in fields.items()]
    assignments = ", ".join(f"{k} = ?" for k in fields)
    db.execute(f"UPDATE orders SET {assignments} WHERE order_id = ?", (*values, order_id))


def set_order_address(db: sqlite3.Connection, order_id: str, address: Address) -> None:
    db.execute(f"UPDATE orders SET {', '.join(f'{c} = ?' for c in _ADDRESS)} WHERE order_id = ?",
               (*(address[c] for c in _ADDRESS), order_id))


def set_user_address(db: sqlite3.Connection, user_id: str, address: Address) -> None:
    db.execute(f"UPDATE users SET {', '.join(f'{c} = ?' for c in _ADDRESS)} WHERE user_id = ?",
               (*(address[c] for c in _ADDRESS), user_id))


def set_items(db: sqlite3.Connection, order_id: str, items: list[OrderItem]) -> None:
    """Replace the order's items (in order)."""
    db.execute("DELETE FROM order_items WHERE order_id = ?", (order_id,))
    db.executemany(
        "INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(order_id, i, it["name"], it["product_id"], it["item_id"], it["price"], _dumps(it["options"]))
         for i, it in enumerate(items)],
    )


def add_payments(db: sqlite3.Connection, order_id: str, payments: list[Payment]) -> None:
    """Append transactions to the order's payment history."""
    start = db.execute("SELECT COUNT(*) FROM payments WHERE order_id = ?", (order_id,)).fetchone()[0]
    db.executemany(
        "INSERT INTO payments VALUES (?, ?, ?, ?, ?)",
        [(order_id, start + i, p["transaction_type"], p["amount"], p["payment_method_id"])
         for i, p in enumerate(payments)],
    )

