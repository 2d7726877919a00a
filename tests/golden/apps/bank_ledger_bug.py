"""Golden app: a bank account ledger whose first code has an off-by-one bug.

``Ledger.withdraw`` first refuses a withdrawal when ``amount >= balance``, so emptying the
account is wrongly refused. QA's test for withdrawing the whole balance fails, the Engineer's
FixBug answer corrects the comparison, and the re-run passes (fix round 1).
"""

IDEA = (
    "a bank account ledger on the command line: deposit and withdraw money, refuse overdrafts, "
    "show the balance and the transaction history, and keep everything in a JSON file"
)

PRD = r'''Below is the PRD. Amounts are kept as integer cents internally so balances never suffer from floating-point rounding.

```json
{
  "project_name": "bank_ledger",
  "summary": "A command-line ledger for one bank account that records deposits and withdrawals in a JSON file, refuses overdrafts, and shows the balance and history.",
  "goals": [
    "Record deposits and withdrawals with an optional note",
    "Never let the balance go below zero",
    "Show an exact balance and the full history"
  ],
  "user_stories": [
    "As an account holder, I want to record a deposit so that my balance is up to date",
    "As an account holder, I want a withdrawal larger than my balance to be refused so that I never overdraw",
    "As an account holder, I want to see my transaction history so that I can check my spending"
  ],
  "requirements": [
    {"id": "R1", "text": "Amounts are given in decimal notation with at most two decimals (e.g. 19.99) and stored as integer cents", "priority": "P0"},
    {"id": "R2", "text": "deposit AMOUNT [--note TEXT] adds money; the amount must be positive", "priority": "P0"},
    {"id": "R3", "text": "withdraw AMOUNT [--note TEXT] removes money unless it exceeds the balance", "priority": "P0"},
    {"id": "R4", "text": "balance prints the current balance with two decimals", "priority": "P0"},
    {"id": "R5", "text": "history prints every transaction in order with its kind, amount and note", "priority": "P1"},
    {"id": "R6", "text": "The ledger is stored in the JSON file given by --file (default ledger.json)", "priority": "P0"}
  ],
  "acceptance_criteria": [
    "Depositing 19.99 then 0.01 gives a balance of 20.00",
    "Withdrawing more than the balance is refused and leaves the balance unchanged",
    "Withdrawing exactly the whole balance is allowed and leaves 0.00",
    "Zero, negative and three-decimal amounts are rejected",
    "Transactions saved by one run are loaded by the next",
    "An overdraft on the command line prints an error to stderr and exits with status 1"
  ],
  "anything_unclear": ""
}
```'''

DESIGN = r'''{
  "implementation_approach": "Money is handled as integer cents everywhere: bank_ledger/money.py parses user text with decimal.Decimal into cents and formats cents back. bank_ledger/ledger.py has a Transaction dataclass and a Ledger that validates amounts, refuses overdrafts with InsufficientFundsError, computes the balance from the transactions, and loads/saves a JSON file. bank_ledger/__main__.py is an argparse CLI with deposit, withdraw, balance and history subcommands.",
  "files": [
    {"path": "bank_ledger/__init__.py", "purpose": "package exports"},
    {"path": "bank_ledger/money.py", "purpose": "parse_amount(text) -> cents and format_cents(cents) -> text"},
    {"path": "bank_ledger/ledger.py", "purpose": "Transaction, Ledger with JSON persistence, InsufficientFundsError"},
    {"path": "bank_ledger/__main__.py", "purpose": "command line: deposit, withdraw, balance, history"}
  ],
  "class_diagram": "```mermaid\nclassDiagram\n    class Transaction {\n        +str kind\n        +int amount\n        +str note\n    }\n    class Ledger {\n        +Path path\n        +list~Transaction~ transactions\n        +load(path) Ledger\n        +balance() int\n        +deposit(amount, note) Transaction\n        +withdraw(amount, note) Transaction\n        +save() None\n    }\n    class InsufficientFundsError\n    ValueError <|-- InsufficientFundsError\n    Ledger o-- Transaction\n```",
  "sequence_diagram": "sequenceDiagram\n    participant U as User\n    participant M as main\n    participant P as money\n    participant L as Ledger\n    U->>M: bank_ledger withdraw 25.00\n    M->>P: parse_amount(\"25.00\")\n    P-->>M: 2500\n    M->>L: load(path)\n    M->>L: withdraw(2500, note)\n    alt amount > balance\n        L-->>M: InsufficientFundsError\n        M-->>U: error, exit 1\n    else\n        L-->>M: Transaction\n        M->>L: save()\n        M-->>U: Withdrew 25.00, balance 75.00\n    end",
  "anything_unclear": "Only one account per file; multiple accounts would need another file each."
}'''

TASKS = r'''Here is the plan, dependencies first:

```json
{
  "tasks": [
    {"path": "bank_ledger/money.py", "description": "parse_amount(text) -> int cents using Decimal: reject non-numbers, more than two decimals, zero and negatives with ValueError; format_cents(cents) -> '12.34' (with a leading '-' for negatives)", "depends_on": []},
    {"path": "bank_ledger/ledger.py", "description": "Transaction dataclass (kind 'deposit' or 'withdrawal', amount in cents, note); InsufficientFundsError(ValueError); Ledger with load(path) (missing file = empty), balance(), deposit(), withdraw() refusing amounts above the balance, history(), save() writing JSON", "depends_on": ["bank_ledger/money.py"]},
    {"path": "bank_ledger/__init__.py", "description": "re-export Ledger, Transaction, InsufficientFundsError, parse_amount, format_cents", "depends_on": ["bank_ledger/money.py", "bank_ledger/ledger.py"]},
    {"path": "bank_ledger/__main__.py", "description": "main(argv=None) -> int with --file (default ledger.json) and subcommands deposit/withdraw AMOUNT [--note], balance, history; print results with format_cents; print 'error: ...' to stderr and return 1 for bad amounts or overdrafts", "depends_on": ["bank_ledger/money.py", "bank_ledger/ledger.py"]}
  ]
}
```'''

MONEY = r'''```python
"""Amounts of money as integer cents."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_amount(text: str) -> int:
    """``"19.99"`` -> ``1999``. The amount must be positive with at most two decimals."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    if value <= 0:
        raise ValueError("amount must be positive")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError("amount must have at most two decimals")
    return int(cents)


def format_cents(cents: int) -> str:
    """``1999`` -> ``"19.99"``; ``-5`` -> ``"-0.05"``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"
```'''

# The bug: `amount >= balance` refuses a withdrawal of exactly the whole balance.
LEDGER_BUGGY = r'''```python
"""The account ledger and its JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bank_ledger.money import format_cents


class InsufficientFundsError(ValueError):
    """A withdrawal larger than the balance."""


@dataclass
class Transaction:
    kind: str  # "deposit" or "withdrawal"
    amount: int  # cents, always positive
    note: str = ""


@dataclass
class Ledger:
    path: Path
    transactions: list[Transaction] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "Ledger":
        """Read the ledger at ``path``; a missing file is an empty ledger."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8") or "[]")
        return cls(path, [Transaction(**item) for item in data])

    def balance(self) -> int:
        """The balance in cents."""
        return sum(t.amount if t.kind == "deposit" else -t.amount for t in self.transactions)

    @staticmethod
    def _check(amount: int) -> None:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ValueError("amount must be a positive number of cents")

    def deposit(self, amount: int, note: str = "") -> Transaction:
        self._check(amount)
        transaction = Transaction("deposit", amount, note)
        self.transactions.append(transaction)
        return transaction

    def withdraw(self, amount: int, note: str = "") -> Transaction:
        self._check(amount)
        balance = self.balance()
        if amount >= balance:
            raise InsufficientFundsError(
                f"cannot withdraw {format_cents(amount)}: balance is {format_cents(balance)}"
            )
        transaction = Transaction("withdrawal", amount, note)
        self.transactions.append(transaction)
        return transaction

    def history(self) -> list[Transaction]:
        return list(self.transactions)

    def save(self) -> None:
        data = [asdict(t) for t in self.transactions]
        self.path.write_text(json.dumps(data, indent=2), encoding="utf-8")
```'''

INIT = r'''```python
"""A bank account ledger kept in a JSON file."""

from bank_ledger.ledger import InsufficientFundsError, Ledger, Transaction
from bank_ledger.money import format_cents, parse_amount

__all__ = ["InsufficientFundsError", "Ledger", "Transaction", "format_cents", "parse_amount"]
```'''

MAIN = r'''Here's the command-line entry point:

```python
"""Command line: python -m bank_ledger [--file FILE] deposit|withdraw|balance|history ..."""

from __future__ import annotations

import argparse
import sys

from bank_ledger.ledger import InsufficientFundsError, Ledger
from bank_ledger.money import format_cents, parse_amount


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bank_ledger", description="A bank account ledger.")
    parser.add_argument("--file", default="ledger.json", help="where the ledger is kept")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("deposit", "withdraw"):
        cmd = sub.add_parser(name, help=f"{name} money")
        cmd.add_argument("amount", help="amount such as 19.99")
        cmd.add_argument("--note", default="", help="what it was for")
    sub.add_parser("balance", help="show the balance")
    sub.add_parser("history", help="list all transactions")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ledger = Ledger.load(args.file)
    try:
        if args.command in ("deposit", "withdraw"):
            amount = parse_amount(args.amount)
            if args.command == "deposit":
                ledger.deposit(amount, args.note)
                verb = "Deposited"
            else:
                ledger.withdraw(amount, args.note)
                verb = "Withdrew"
            print(f"{verb} {format_cents(amount)}, balance {format_cents(ledger.balance())}")
        elif args.command == "balance":
            print(f"Balance: {format_cents(ledger.balance())}")
            return 0
        elif args.command == "history":
            if not ledger.transactions:
                print("No transactions.")
            for i, t in enumerate(ledger.history(), 1):
                sign = "+" if t.kind == "deposit" else "-"
                note = f"  {t.note}" if t.note else ""
                print(f"{i}. {t.kind:<10} {sign}{format_cents(t.amount)}{note}")
            return 0
    except InsufficientFundsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ledger.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
```'''

TEST_MONEY = r'''```python
import pytest

from bank_ledger.money import format_cents, parse_amount


def test_parse_amount_to_cents():
    assert parse_amount("19.99") == 1999
    assert parse_amount("0.29") == 29
    assert parse_amount("5") == 500
    assert parse_amount(" 0.1 ") == 10


def test_parse_amount_rejects_bad_input():
    for text in ["0", "-3", "1.234", "abc", "", "nan"]:
        with pytest.raises(ValueError):
            parse_amount(text)


def test_format_cents():
    assert format_cents(1999) == "19.99"
    assert format_cents(5) == "0.05"
    assert format_cents(-250) == "-2.50"
```'''

TEST_LEDGER = r'''These tests follow the acceptance criteria for deposits, withdrawals and persistence:

```python
import pytest

from bank_ledger.ledger import InsufficientFundsError, Ledger


def test_deposits_add_up_exactly(tmp_path):
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.deposit(1999)
    ledger.deposit(1)
    assert ledger.balance() == 2000


def test_overdraft_is_refused(tmp_path):
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.deposit(1000)
    with pytest.raises(InsufficientFundsError):
        ledger.withdraw(1001)
    assert ledger.balance() == 1000


def test_withdraw_whole_balance(tmp_path):
    ledger = Ledger.load(tmp_path / "ledger.json")
    ledger.deposit(2500)
    ledger.withdraw(2500, "rent")
    assert ledger.balance() == 0


def test_non_positive_amounts_rejected(tmp_path):
    ledger = Ledger.load(tmp_path / "ledger.json")
    with pytest.raises(ValueError):
        ledger.deposit(0)
    with pytest.raises(ValueError):
        ledger.withdraw(-5)


def test_save_and_load(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = Ledger.load(path)
    ledger.deposit(5000, "salary")
    ledger.withdraw(1250, "groceries")
    ledger.save()
    again = Ledger.load(path)
    assert [(t.kind, t.amount, t.note) for t in again.history()] == [
        ("deposit", 5000, "salary"),
        ("withdrawal", 1250, "groceries"),
    ]
    assert again.balance() == 3750
```'''

TEST_CLI = r'''```python
from bank_ledger.__main__ import main


def test_deposit_withdraw_balance(tmp_path, capsys):
    path = str(tmp_path / "l.json")
    assert main(["--file", path, "deposit", "100", "--note", "pay"]) == 0
    assert main(["--file", path, "withdraw", "25.50"]) == 0
    capsys.readouterr()
    assert main(["--file", path, "balance"]) == 0
    assert capsys.readouterr().out.strip() == "Balance: 74.50"


def test_overdraft_fails_and_keeps_balance(tmp_path, capsys):
    path = str(tmp_path / "l.json")
    main(["--file", path, "deposit", "10"])
    assert main(["--file", path, "withdraw", "10.01"]) == 1
    assert "error" in capsys.readouterr().err
    main(["--file", path, "balance"])
    assert "Balance: 10.00" in capsys.readouterr().out


def test_history_lists_transactions(tmp_path, capsys):
    path = str(tmp_path / "l.json")
    main(["--file", path, "deposit", "19.99", "--note", "refund"])
    main(["--file", path, "withdraw", "4.99"])
    capsys.readouterr()
    assert main(["--file", path, "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["1.", "deposit", "+19.99", "refund"]
    assert lines[1].split() == ["2.", "withdrawal", "-4.99"]
```'''

LEDGER_FIXED_CODE = LEDGER_BUGGY.replace("if amount >= balance:", "if amount > balance:")
assert LEDGER_FIXED_CODE != LEDGER_BUGGY

FIX = (
    "The failure is an off-by-one in `Ledger.withdraw`: it refused a withdrawal when "
    "`amount >= balance`, so taking out exactly the whole balance raised "
    "`InsufficientFundsError`. Only an amount *greater* than the balance is an overdraft, so "
    "the comparison must be `>`. The test is right (it matches the acceptance criterion "
    "\"Withdrawing exactly the whole balance is allowed and leaves 0.00\").\n\n"
    "## bank_ledger/ledger.py\n" + LEDGER_FIXED_CODE
)

ANSWERS = {
    ("ProductManager", "WritePRD"): [PRD],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [MONEY, LEDGER_BUGGY, INIT, MAIN],
    ("QaEngineer", "WriteTests"): [TEST_MONEY, TEST_LEDGER, TEST_CLI],
    ("Engineer", "FixBug"): [FIX],
}
