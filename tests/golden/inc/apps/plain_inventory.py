"""Incremental golden app: a low-stock alert for a small project mgpt did not make.

``FILES`` is the project as a person wrote it (a package and its tests, no docs/, no
.mgpt/); ``ANSWERS`` is what a model answered at each step of ``mgpt run "..." --inc`` on
it. items.py changes, alerts.py is new; __init__.py and report.py stay as they are.
"""

BASE = None

FILES = {
    "inventory/__init__.py": '''"""A tiny stock list."""

from inventory.items import Inventory, Item

__all__ = ["Inventory", "Item"]
''',
    "inventory/items.py": '''"""Items and the inventory that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    quantity: int
    price: float


@dataclass
class Inventory:
    items: dict[str, Item] = field(default_factory=dict)

    def add(self, name: str, quantity: int, price: float) -> Item:
        """Add stock; adding an existing name increases its quantity."""
        if quantity < 0:
            raise ValueError("quantity must not be negative")
        item = self.items.get(name)
        if item is None:
            item = self.items[name] = Item(name, 0, price)
        item.quantity += quantity
        item.price = price
        return item

    def remove(self, name: str, quantity: int) -> Item:
        item = self.items[name]
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} {name} in stock")
        item.quantity -= quantity
        return item

    def total_value(self) -> float:
        return sum(i.quantity * i.price for i in self.items.values())
''',
    "inventory/report.py": '''"""A plain-text stock table."""

from inventory.items import Inventory


def format_table(inventory: Inventory) -> str:
    rows = [f"{i.name:<12} {i.quantity:>5} {i.price:>8.2f}" for i in sorted(inventory.items.values(), key=lambda i: i.name)]
    return "\\n".join(rows + [f"{'total':<12} {'':>5} {inventory.total_value():>8.2f}"])
''',
    "tests/test_items.py": '''import pytest

from inventory import Inventory


def test_add_and_total():
    inv = Inventory()
    inv.add("apple", 3, 0.5)
    inv.add("apple", 2, 0.5)
    inv.add("pear", 1, 2.0)
    assert inv.items["apple"].quantity == 5
    assert inv.total_value() == 4.5


def test_remove_too_many():
    inv = Inventory()
    inv.add("apple", 1, 0.5)
    with pytest.raises(ValueError):
        inv.remove("apple", 2)
''',
    "tests/test_report.py": '''from inventory import Inventory
from inventory.report import format_table


def test_table_lists_items_and_total():
    inv = Inventory()
    inv.add("pear", 2, 1.0)
    inv.add("apple", 1, 0.5)
    lines = format_table(inv).splitlines()
    assert lines[0].startswith("apple")
    assert lines[-1].startswith("total") and lines[-1].endswith("2.50")
''',
}

IDEA = "add a low-stock alert: list the items whose quantity is below a threshold"

CHANGE = '''{
  "title": "low-stock alert",
  "summary": "The inventory can report which items run low: those whose quantity is below a threshold, with a readable alert line for each.",
  "user_stories": ["As a shop keeper, I want to see which items run low so that I reorder them in time"],
  "requirements": [
    {"id": "R1", "text": "Inventory.low_stock(threshold) returns the items whose quantity is below threshold, sorted by name", "priority": "P0"},
    {"id": "R2", "text": "low_stock_alerts(inventory, threshold) returns one line 'LOW: <name> (<quantity> left)' per low item", "priority": "P0"},
    {"id": "R3", "text": "a negative threshold is rejected with ValueError", "priority": "P1"}
  ],
  "removed_requirements": [],
  "acceptance_criteria": [
    "With apple 1 and pear 10, low_stock(5) returns only apple",
    "An item whose quantity equals the threshold is not low",
    "low_stock_alerts gives 'LOW: apple (1 left)' for apple with quantity 1",
    "low_stock(-1) raises ValueError",
    "An inventory with nothing low gives no alerts"
  ],
  "anything_unclear": ""
}'''

DESIGN = '''```json
{
  "implementation_approach": "Add Inventory.low_stock(threshold) to items.py, next to the data it reads, and put the alert wording in a new module alerts.py so report.py and the package exports stay as they are.",
  "changed_files": [
    {"path": "inventory/items.py", "purpose": "Item and Inventory, now with low_stock(threshold)"}
  ],
  "new_files": [
    {"path": "inventory/alerts.py", "purpose": "low_stock_alerts(inventory, threshold): one alert line per low item"}
  ],
  "class_diagram": "classDiagram\\n    class Item {\\n        +str name\\n        +int quantity\\n        +float price\\n    }\\n    class Inventory {\\n        +dict items\\n        +add(name, quantity, price) Item\\n        +remove(name, quantity) Item\\n        +total_value() float\\n        +low_stock(threshold) list~Item~\\n    }\\n    Inventory o-- Item",
  "sequence_diagram": "sequenceDiagram\\n    participant C as caller\\n    participant A as alerts\\n    participant I as Inventory\\n    C->>A: low_stock_alerts(inventory, 5)\\n    A->>I: low_stock(5)\\n    I-->>A: list of Item\\n    A-->>C: lines",
  "anything_unclear": ""
}
```'''

TASKS = '''```json
{
  "tasks": [
    {"path": "inventory/items.py", "description": "add Inventory.low_stock(threshold: int) -> list[Item]: ValueError for a negative threshold, else items with quantity < threshold sorted by name", "depends_on": []},
    {"path": "inventory/alerts.py", "description": "low_stock_alerts(inventory, threshold) -> list[str] with 'LOW: <name> (<quantity> left)' per item from low_stock", "depends_on": ["inventory/items.py"]}
  ]
}
```'''

ITEMS = '''```python
"""Items and the inventory that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    quantity: int
    price: float


@dataclass
class Inventory:
    items: dict[str, Item] = field(default_factory=dict)

    def add(self, name: str, quantity: int, price: float) -> Item:
        """Add stock; adding an existing name increases its quantity."""
        if quantity < 0:
            raise ValueError("quantity must not be negative")
        item = self.items.get(name)
        if item is None:
            item = self.items[name] = Item(name, 0, price)
        item.quantity += quantity
        item.price = price
        return item

    def remove(self, name: str, quantity: int) -> Item:
        item = self.items[name]
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} {name} in stock")
        item.quantity -= quantity
        return item

    def total_value(self) -> float:
        return sum(i.quantity * i.price for i in self.items.values())

    def low_stock(self, threshold: int) -> list[Item]:
        """Items with fewer than ``threshold`` in stock, by name."""
        if threshold < 0:
            raise ValueError("threshold must not be negative")
        return sorted((i for i in self.items.values() if i.quantity < threshold), key=lambda i: i.name)
```'''

ALERTS = '''Here is the new module.

```python
"""Low-stock alerts: one readable line per item that runs low."""

from __future__ import annotations

from inventory.items import Inventory


def low_stock_alerts(inventory: Inventory, threshold: int) -> list[str]:
    """``LOW: <name> (<quantity> left)`` for each item below ``threshold``."""
    return [f"LOW: {item.name} ({item.quantity} left)" for item in inventory.low_stock(threshold)]
```'''

TEST_ITEMS = '''```python
import pytest

from inventory.items import Inventory


def make():
    inv = Inventory()
    inv.add("pear", 10, 2.0)
    inv.add("apple", 1, 0.5)
    inv.add("fig", 5, 1.0)
    return inv


def test_low_stock_below_threshold_only():
    assert [i.name for i in make().low_stock(5)] == ["apple"]


def test_low_stock_sorted_by_name():
    assert [i.name for i in make().low_stock(11)] == ["apple", "fig", "pear"]


def test_negative_threshold_rejected():
    with pytest.raises(ValueError):
        make().low_stock(-1)
```'''

TEST_ALERTS = '''```python
from inventory.alerts import low_stock_alerts
from inventory.items import Inventory


def test_alert_line():
    inv = Inventory()
    inv.add("apple", 1, 0.5)
    inv.add("pear", 10, 2.0)
    assert low_stock_alerts(inv, 5) == ["LOW: apple (1 left)"]


def test_no_alerts_when_nothing_is_low():
    inv = Inventory()
    inv.add("pear", 10, 2.0)
    assert low_stock_alerts(inv, 5) == []
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [CHANGE],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [ITEMS, ALERTS],
    ("QaEngineer", "WriteTests"): [TEST_ITEMS, TEST_ALERTS],
}
