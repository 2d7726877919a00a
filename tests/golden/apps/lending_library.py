"""Golden app: a lending library of twelve files with real dependencies between them (the
latency benchmark's project: files written along their dependencies, tests per module at
once). The first test run fails on a bug that pytest reports with an object address, which
the fix prompt must carry normalised; one fix round repairs it."""

IDEA = 'build a lending library: books, members, loans with due dates and late fines, kept in a JSON file, with a command line'

PRD = r'''```json
{
  "project_name": "lending_library",
  "summary": "A small lending library for the command line: a catalog of books, members who borrow them, loans with due dates, and late fines after a grace period, all kept in one JSON file.",
  "goals": [
    "Lend and take back books with clear rules",
    "Show what is overdue and who owes what",
    "Keep the library in a plain JSON file"
  ],
  "user_stories": [
    "As a librarian, I want to add books with a number of copies so that members can borrow them",
    "As a librarian, I want to register members so that I know who borrows what",
    "As a librarian, I want to check a book out and take it back so that loans are tracked",
    "As a librarian, I want to list overdue loans so that I can chase them",
    "As a librarian, I want to see each member's fines so that they can be paid"
  ],
  "requirements": [
    {
      "id": "R1",
      "text": "add-book ID TITLE AUTHOR [--copies N] adds a book; ids are unique",
      "priority": "P0"
    },
    {
      "id": "R2",
      "text": "join ID NAME registers a member who may hold at most 3 books",
      "priority": "P0"
    },
    {
      "id": "R3",
      "text": "checkout BOOK MEMBER lends a copy for 14 days when one is on the shelf and the member is under the limit",
      "priority": "P0"
    },
    {
      "id": "R4",
      "text": "return LOAN closes a loan and reports its fine: 0.25 per late day after a 2-day grace period, at most 10.00",
      "priority": "P0"
    },
    {
      "id": "R5",
      "text": "overdue lists open loans past their due date, the longest overdue first",
      "priority": "P1"
    },
    {
      "id": "R6",
      "text": "balances lists what each member owes",
      "priority": "P1"
    },
    {
      "id": "R7",
      "text": "the library is saved to the JSON file given by --file; --today sets the date acted on",
      "priority": "P0"
    }
  ],
  "acceptance_criteria": [
    "A checkout on 2024-03-01 is due on 2024-03-15",
    "A book with one copy cannot be checked out twice at once",
    "A member with 3 open loans cannot borrow a fourth",
    "A book returned 2 days late costs nothing; 5 days late costs 1.25",
    "overdue lists only open loans past their due date, longest overdue first",
    "Books, members and loans saved in one run are there in the next",
    "Unknown ids print an error on stderr and exit with status 1"
  ],
  "anything_unclear": ""
}
```'''

DESIGN = r'''```json
{
  "implementation_approach": "A standard-library package in small modules with one job each: dataclass records (models), a catalog and a member registry keyed by id, a fine policy, a lending desk that applies the rules, JSON storage, reports, and a Library facade that loads the file, acts and saves. The command line in __main__.py parses arguments with argparse and prints one line per result; errors are LibraryError subclasses printed to stderr with exit status 1. Dates are datetime.date, written as ISO strings.",
  "files": [
    {
      "path": "lending_library/__init__.py",
      "purpose": "package: re-exports Library, the records and the errors"
    },
    {
      "path": "lending_library/errors.py",
      "purpose": "LibraryError and NotFoundError, DuplicateError, LoanError"
    },
    {
      "path": "lending_library/clock.py",
      "purpose": "parse_date, format_date, add_days, days_between"
    },
    {
      "path": "lending_library/models.py",
      "purpose": "Book, Member and Loan dataclasses"
    },
    {
      "path": "lending_library/catalog.py",
      "purpose": "Catalog: add, get, search and list books"
    },
    {
      "path": "lending_library/members.py",
      "purpose": "MemberRegistry: join, get and list members"
    },
    {
      "path": "lending_library/fines.py",
      "purpose": "FinePolicy (daily fine after a grace period, capped) and format_cents"
    },
    {
      "path": "lending_library/storage.py",
      "purpose": "load and save books, members and loans as one JSON file"
    },
    {
      "path": "lending_library/reports.py",
      "purpose": "overdue loans, fines owed per member, overdue report lines"
    },
    {
      "path": "lending_library/loans.py",
      "purpose": "LoanDesk: checkout and give_back under the lending rules"
    },
    {
      "path": "lending_library/service.py",
      "purpose": "Library: the whole library loaded from and saved to its file"
    },
    {
      "path": "lending_library/__main__.py",
      "purpose": "argparse command line: add-book, join, checkout, return, overdue, balances"
    }
  ],
  "class_diagram": "classDiagram\n    class Book {\n        +str book_id\n        +str title\n        +str author\n        +int copies\n    }\n    class Member {\n        +str member_id\n        +str name\n        +int max_loans\n    }\n    class Loan {\n        +int loan_id\n        +str book_id\n        +str member_id\n        +date borrowed\n        +date due\n        +date returned\n        +open() bool\n    }\n    class Catalog {\n        +add(book) Book\n        +get(book_id) Book\n        +search(text) list~Book~\n        +all() list~Book~\n    }\n    class MemberRegistry {\n        +join(member) Member\n        +get(member_id) Member\n        +all() list~Member~\n    }\n    class FinePolicy {\n        +int cents_per_day\n        +int grace_days\n        +int cap_cents\n        +days_late(loan, today) int\n        +fine(loan, today) int\n    }\n    class LoanDesk {\n        +list~Loan~ loans\n        +open_loans(member_id) list~Loan~\n        +available(book_id) int\n        +checkout(book_id, member_id, today) Loan\n        +give_back(loan_id, today) int\n    }\n    class Library {\n        +Path path\n        +save() None\n        +add_book(book_id, title, author, copies) Book\n        +join(member_id, name, max_loans) Member\n        +checkout(book_id, member_id, today) Loan\n        +give_back(loan_id, today) int\n        +overdue_report(today) list~str~\n        +balances(today) dict\n    }\n    LoanDesk --> Catalog\n    LoanDesk --> MemberRegistry\n    LoanDesk --> FinePolicy\n    LoanDesk o-- Loan\n    Catalog o-- Book\n    MemberRegistry o-- Member\n    Library --> LoanDesk",
  "sequence_diagram": "sequenceDiagram\n    participant U as User\n    participant M as main\n    participant L as Library\n    participant D as LoanDesk\n    U->>M: lending_library checkout b1 m1\n    M->>L: Library(file)\n    M->>L: checkout(book_id, member_id, today)\n    L->>D: checkout(book_id, member_id, today)\n    D-->>L: Loan\n    M->>L: save()\n    M-->>U: loan 1: due 2024-03-15",
  "anything_unclear": ""
}
```'''

TASKS = r'''{
  "tasks": [
    {
      "path": "lending_library/errors.py",
      "description": "LibraryError base; NotFoundError(LibraryError, KeyError) whose str is the plain message; DuplicateError and LoanError as ValueErrors",
      "depends_on": []
    },
    {
      "path": "lending_library/clock.py",
      "description": "parse_date(text) for YYYY-MM-DD (ValueError 'not a date' otherwise), format_date, add_days, days_between",
      "depends_on": []
    },
    {
      "path": "lending_library/models.py",
      "description": "Book(book_id, title, author, copies=1), Member(member_id, name, max_loans=3), Loan(loan_id, book_id, member_id, borrowed, due, returned=None) with an open property",
      "depends_on": []
    },
    {
      "path": "lending_library/catalog.py",
      "description": "Catalog(books): add refusing duplicates, empty ids and fewer than one copy; get raising NotFoundError; search by title or author ignoring case, sorted by title; all sorted by id",
      "depends_on": [
        "lending_library/models.py",
        "lending_library/errors.py"
      ]
    },
    {
      "path": "lending_library/members.py",
      "description": "MemberRegistry(members): join refusing duplicates, empty names and max_loans below 1; get raising NotFoundError; all sorted by id",
      "depends_on": [
        "lending_library/models.py",
        "lending_library/errors.py"
      ]
    },
    {
      "path": "lending_library/fines.py",
      "description": "FinePolicy(cents_per_day=25, grace_days=2, cap_cents=1000) with days_late and fine (0 within the grace period, then every late day, capped); format_cents",
      "depends_on": [
        "lending_library/clock.py",
        "lending_library/models.py"
      ]
    },
    {
      "path": "lending_library/storage.py",
      "description": "load(path) -> (books, members, loans), a missing file is empty, a broken one a LibraryError; save(path, books, members, loans) as indented JSON with ISO dates",
      "depends_on": [
        "lending_library/models.py",
        "lending_library/errors.py"
      ]
    },
    {
      "path": "lending_library/reports.py",
      "description": "overdue(loans, today): open loans past due, longest overdue first; owed(loans, today, policy): cents per member who owes anything; overdue_lines for the command line",
      "depends_on": [
        "lending_library/clock.py",
        "lending_library/fines.py",
        "lending_library/models.py"
      ]
    },
    {
      "path": "lending_library/loans.py",
      "description": "LoanDesk(catalog, members, loans, policy): open_loans, available, checkout (14 days; refuses when no copy is on the shelf or the member is at max_loans), give_back returning the fine",
      "depends_on": [
        "lending_library/catalog.py",
        "lending_library/clock.py",
        "lending_library/errors.py",
        "lending_library/fines.py",
        "lending_library/members.py",
        "lending_library/models.py"
      ]
    },
    {
      "path": "lending_library/service.py",
      "description": "Library(path) loading storage into a Catalog, MemberRegistry and LoanDesk; save; add_book, join, checkout, give_back, overdue_report, balances",
      "depends_on": [
        "lending_library/storage.py",
        "lending_library/catalog.py",
        "lending_library/loans.py",
        "lending_library/members.py",
        "lending_library/models.py",
        "lending_library/reports.py"
      ]
    },
    {
      "path": "lending_library/__init__.py",
      "description": "re-export Library, Book, Member, Loan and the errors",
      "depends_on": [
        "lending_library/errors.py",
        "lending_library/models.py",
        "lending_library/service.py"
      ]
    },
    {
      "path": "lending_library/__main__.py",
      "description": "main(argv) with --file and --today and subcommands add-book, join, checkout, return, overdue, balances; print results; 'error: ...' on stderr and status 1 for LibraryError or ValueError",
      "depends_on": [
        "lending_library/clock.py",
        "lending_library/errors.py",
        "lending_library/fines.py",
        "lending_library/service.py"
      ]
    }
  ]
}'''

CODE_ERRORS = r'''```python
"""The errors the library raises; each is a ValueError or KeyError a caller can catch."""


class LibraryError(Exception):
    """Base class for every library error."""


class NotFoundError(LibraryError, KeyError):
    """A book, member or loan id that is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class DuplicateError(LibraryError, ValueError):
    """An id that is already taken."""


class LoanError(LibraryError, ValueError):
    """A checkout or return that the rules refuse."""
```'''

CODE_CLOCK = r'''```python
"""Dates as the library reads and writes them: ISO strings, whole days."""

from __future__ import annotations

from datetime import date, timedelta


def parse_date(text: str) -> date:
    """``2024-03-01`` -> a date; anything else is a ValueError naming the text."""
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


def format_date(day: date) -> str:
    return day.isoformat()


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def days_between(start: date, end: date) -> int:
    """Whole days from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    return (end - start).days
```'''

CODE_MODELS = r'''```python
"""The library's records: books, members and loans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass
class Book:
    book_id: str
    title: str
    author: str
    copies: int = 1


@dataclass
class Member:
    member_id: str
    name: str
    max_loans: int = 3


@dataclass
class Loan:
    loan_id: int
    book_id: str
    member_id: str
    borrowed: date
    due: date
    returned: date | None = None

    @property
    def open(self) -> bool:
        return self.returned is None
```'''

CODE_CATALOG = r'''```python
"""The catalog: every book the library owns, and how many copies."""

from __future__ import annotations

from lending_library.errors import DuplicateError, NotFoundError
from lending_library.models import Book


class Catalog:
    def __init__(self, books: list[Book] | None = None):
        self._books: dict[str, Book] = {}
        for book in books or []:
            self.add(book)

    def add(self, book: Book) -> Book:
        if not book.book_id.strip():
            raise ValueError("a book needs an id")
        if book.copies < 1:
            raise ValueError("a book needs at least one copy")
        if book.book_id in self._books:
            raise DuplicateError(f"book {book.book_id} is already in the catalog")
        self._books[book.book_id] = book
        return book

    def get(self, book_id: str) -> Book:
        try:
            return self._books[book_id]
        except KeyError:
            raise NotFoundError(f"no book {book_id}") from None

    def search(self, text: str) -> list[Book]:
        """Books whose title or author contains ``text`` (any case), by title."""
        needle = text.lower()
        found = [b for b in self._books.values() if needle in b.title.lower() or needle in b.author.lower()]
        return sorted(found, key=lambda b: b.title.lower())

    def all(self) -> list[Book]:
        return sorted(self._books.values(), key=lambda b: b.book_id)
```'''

CODE_MEMBERS = r'''```python
"""The members who may borrow books."""

from __future__ import annotations

from lending_library.errors import DuplicateError, NotFoundError
from lending_library.models import Member


class MemberRegistry:
    def __init__(self, members: list[Member] | None = None):
        self._members: dict[str, Member] = {}
        for member in members or []:
            self.join(member)

    def join(self, member: Member) -> Member:
        if not member.name.strip():
            raise ValueError("a member needs a name")
        if member.max_loans < 1:
            raise ValueError("max_loans must be at least 1")
        if member.member_id in self._members:
            raise DuplicateError(f"member {member.member_id} already exists")
        self._members[member.member_id] = member
        return member

    def get(self, member_id: str) -> Member:
        try:
            return self._members[member_id]
        except KeyError:
            raise NotFoundError(f"no member {member_id}") from None

    def all(self) -> list[Member]:
        return sorted(self._members.values(), key=lambda m: m.member_id)
```'''

CODE_FINES = r'''```python
"""What a late return costs: a daily fine after a grace period, capped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lending_library.clock import days_between
from lending_library.models import Loan


@dataclass(frozen=True)
class FinePolicy:
    cents_per_day: int = 25
    grace_days: int = 2
    cap_cents: int = 1000

    def days_late(self, loan: Loan, today: date) -> int:
        """Days past the due date (to the return, or to today while open)."""
        end = loan.returned or today
        return max(0, days_between(loan.due, end))

    def fine(self, loan: Loan, today: date) -> int:
        """The fine in cents: nothing within the grace period, then every late day counts."""
        late = self.days_late(loan, today)
        if late <= self.grace_days:
            return 0
        return min(self.cap_cents, late * self.cents_per_day)


def format_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
```'''

CODE_STORAGE = r'''```python
"""The library's state in one JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

from lending_library.errors import LibraryError
from lending_library.models import Book, Loan, Member


def _loan(data: dict) -> Loan:
    returned = data.get("returned")
    return Loan(
        loan_id=int(data["loan_id"]), book_id=data["book_id"], member_id=data["member_id"],
        borrowed=date.fromisoformat(data["borrowed"]), due=date.fromisoformat(data["due"]),
        returned=date.fromisoformat(returned) if returned else None,
    )


def load(path: str | Path) -> tuple[list[Book], list[Member], list[Loan]]:
    """Books, members and loans from ``path``; a missing file is an empty library."""
    path = Path(path)
    if not path.exists():
        return [], [], []
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        books = [Book(**b) for b in data.get("books", [])]
        members = [Member(**m) for m in data.get("members", [])]
        loans = [_loan(l) for l in data.get("loans", [])]
    except (ValueError, TypeError, KeyError) as exc:
        raise LibraryError(f"{path} is not a library file: {exc}") from None
    return books, members, loans


def save(path: str | Path, books: list[Book], members: list[Member], loans: list[Loan]) -> None:
    def loan(l: Loan) -> dict:
        data = asdict(l)
        data.update(borrowed=l.borrowed.isoformat(), due=l.due.isoformat(),
                    returned=l.returned.isoformat() if l.returned else None)
        return data

    payload = {"books": [asdict(b) for b in books], "members": [asdict(m) for m in members],
               "loans": [loan(l) for l in loans]}
    Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
```'''

CODE_REPORTS = r'''```python
"""Reports: overdue loans, and what each member owes."""

from __future__ import annotations

from datetime import date

from lending_library.clock import days_between, format_date
from lending_library.fines import FinePolicy, format_cents
from lending_library.models import Loan


def overdue(loans: list[Loan], today: date) -> list[Loan]:
    """Open loans past their due date, the longest overdue first."""
    return (l for l in sorted(loans, key=lambda l: (l.due, l.loan_id)) if l.open and l.due < today)


def owed(loans: list[Loan], today: date, policy: FinePolicy | None = None) -> dict[str, int]:
    """Cents owed per member, for members who owe anything."""
    policy = policy or FinePolicy()
    totals: dict[str, int] = {}
    for loan in loans:
        cents = policy.fine(loan, today)
        if cents:
            totals[loan.member_id] = totals.get(loan.member_id, 0) + cents
    return dict(sorted(totals.items()))


def overdue_lines(loans: list[Loan], today: date, policy: FinePolicy | None = None) -> list[str]:
    policy = policy or FinePolicy()
    return [
        f"{l.loan_id}: {l.book_id} to {l.member_id}, due {format_date(l.due)}, "
        f"{days_between(l.due, today)} days late, fine {format_cents(policy.fine(l, today))}"
        for l in overdue(loans, today)
    ]
```'''

CODE_LOANS = r'''Here is the lending desk; it applies the rules from the PRD:

```python
"""The lending desk: checkouts and returns under the library's rules."""

from __future__ import annotations

from datetime import date

from lending_library.catalog import Catalog
from lending_library.clock import add_days
from lending_library.errors import LoanError, NotFoundError
from lending_library.fines import FinePolicy
from lending_library.members import MemberRegistry
from lending_library.models import Loan

#: How long a loan runs.
LOAN_DAYS = 14


class LoanDesk:
    def __init__(self, catalog: Catalog, members: MemberRegistry, loans: list[Loan] | None = None,
                 policy: FinePolicy | None = None):
        self.catalog = catalog
        self.members = members
        self.loans: list[Loan] = list(loans or [])
        self.policy = policy or FinePolicy()

    def open_loans(self, member_id: str | None = None) -> list[Loan]:
        return [l for l in self.loans if l.open and (member_id is None or l.member_id == member_id)]

    def available(self, book_id: str) -> int:
        """Copies of ``book_id`` on the shelf."""
        book = self.catalog.get(book_id)
        return book.copies - sum(1 for l in self.open_loans() if l.book_id == book_id)

    def checkout(self, book_id: str, member_id: str, today: date) -> Loan:
        member = self.members.get(member_id)
        if self.available(book_id) < 1:
            raise LoanError(f"no copy of {book_id} is on the shelf")
        if len(self.open_loans(member_id)) >= member.max_loans:
            raise LoanError(f"{member.name} already has {member.max_loans} books")
        loan_id = max((l.loan_id for l in self.loans), default=0) + 1
        loan = Loan(loan_id, book_id, member_id, borrowed=today, due=add_days(today, LOAN_DAYS))
        self.loans.append(loan)
        return loan

    def give_back(self, loan_id: int, today: date) -> int:
        """Close the loan; returns the fine in cents."""
        loan = next((l for l in self.loans if l.loan_id == loan_id), None)
        if loan is None:
            raise NotFoundError(f"no loan {loan_id}")
        if not loan.open:
            raise LoanError(f"loan {loan_id} was already returned")
        if today < loan.borrowed:
            raise LoanError("a book cannot come back before it went out")
        loan.returned = today
        return self.policy.fine(loan, today)
```'''

CODE_SERVICE = r'''The facade that the command line uses:

```python
"""The library as one object: load it from its file, act, save it back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from lending_library import storage
from lending_library.catalog import Catalog
from lending_library.loans import LoanDesk
from lending_library.members import MemberRegistry
from lending_library.models import Book, Loan, Member
from lending_library.reports import overdue_lines, owed


class Library:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        books, members, loans = storage.load(self.path)
        self.catalog = Catalog(books)
        self.members = MemberRegistry(members)
        self.desk = LoanDesk(self.catalog, self.members, loans)

    def save(self) -> None:
        storage.save(self.path, self.catalog.all(), self.members.all(), self.desk.loans)

    def add_book(self, book_id: str, title: str, author: str, copies: int = 1) -> Book:
        return self.catalog.add(Book(book_id, title, author, copies))

    def join(self, member_id: str, name: str, max_loans: int = 3) -> Member:
        return self.members.join(Member(member_id, name, max_loans))

    def checkout(self, book_id: str, member_id: str, today: date) -> Loan:
        return self.desk.checkout(book_id, member_id, today)

    def give_back(self, loan_id: int, today: date) -> int:
        return self.desk.give_back(loan_id, today)

    def overdue_report(self, today: date) -> list[str]:
        return overdue_lines(self.desk.loans, today, self.desk.policy)

    def balances(self, today: date) -> dict[str, int]:
        return owed(self.desk.loans, today, self.desk.policy)
```'''

CODE_INIT = r'''```python
"""A small lending library: books, members, loans and fines, kept in a JSON file."""

from lending_library.errors import DuplicateError, LibraryError, LoanError, NotFoundError
from lending_library.models import Book, Loan, Member
from lending_library.service import Library

__all__ = ["Book", "DuplicateError", "Library", "LibraryError", "Loan", "LoanError", "Member", "NotFoundError"]
```'''

CODE_MAIN = r'''```python
"""The library on the command line."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from lending_library.clock import parse_date
from lending_library.errors import LibraryError
from lending_library.fines import format_cents
from lending_library.service import Library


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lending_library", description="A small lending library.")
    parser.add_argument("--file", default="library.json", help="the library's JSON file")
    parser.add_argument("--today", type=parse_date, default=None, help="the date to act on (YYYY-MM-DD)")
    sub = parser.add_subparsers(dest="command", required=True)
    book = sub.add_parser("add-book")
    book.add_argument("book_id")
    book.add_argument("title")
    book.add_argument("author")
    book.add_argument("--copies", type=int, default=1)
    member = sub.add_parser("join")
    member.add_argument("member_id")
    member.add_argument("name")
    out = sub.add_parser("checkout")
    out.add_argument("book_id")
    out.add_argument("member_id")
    back = sub.add_parser("return")
    back.add_argument("loan_id", type=int)
    sub.add_parser("overdue")
    sub.add_parser("balances")
    return parser


def run(args: argparse.Namespace, library: Library, today: date) -> list[str]:
    if args.command == "add-book":
        book = library.add_book(args.book_id, args.title, args.author, args.copies)
        return [f"added {book.book_id}: {book.title}"]
    if args.command == "join":
        return [f"welcome {library.join(args.member_id, args.name).name}"]
    if args.command == "checkout":
        loan = library.checkout(args.book_id, args.member_id, today)
        return [f"loan {loan.loan_id}: due {loan.due.isoformat()}"]
    if args.command == "return":
        return [f"returned; fine {format_cents(library.give_back(args.loan_id, today))}"]
    if args.command == "overdue":
        return library.overdue_report(today) or ["nothing overdue"]
    return [f"{member}: {format_cents(cents)}" for member, cents in library.balances(today).items()] or ["nobody owes anything"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    library = Library(args.file)
    try:
        lines = run(args, library, args.today or date.today())
    except (LibraryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    library.save()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
```'''

TEST_ERRORS = r'''```python
import pytest

from lending_library.errors import DuplicateError, LibraryError, LoanError, NotFoundError


def test_errors_share_a_base_class():
    for error in (NotFoundError, DuplicateError, LoanError):
        assert issubclass(error, LibraryError)


def test_not_found_is_a_key_error_with_a_plain_message():
    with pytest.raises(KeyError):
        raise NotFoundError("no book b1")
    assert str(NotFoundError("no book b1")) == "no book b1"


def test_rule_errors_are_value_errors():
    assert issubclass(DuplicateError, ValueError) and issubclass(LoanError, ValueError)
```'''

TEST_CLOCK = r'''```python
from datetime import date

import pytest

from lending_library.clock import add_days, days_between, format_date, parse_date


def test_parse_and_format_round_trip():
    assert parse_date(" 2024-03-01 ") == date(2024, 3, 1)
    assert format_date(date(2024, 3, 1)) == "2024-03-01"


def test_bad_dates_are_refused():
    with pytest.raises(ValueError, match="not a date"):
        parse_date("03/01/2024")


def test_day_arithmetic():
    assert add_days(date(2024, 2, 28), 2) == date(2024, 3, 1)
    assert days_between(date(2024, 3, 1), date(2024, 3, 15)) == 14
    assert days_between(date(2024, 3, 15), date(2024, 3, 1)) == -14
```'''

TEST_MODELS = r'''```python
from datetime import date

from lending_library.models import Book, Loan, Member


def test_defaults():
    assert Book("b1", "Dune", "Herbert").copies == 1
    assert Member("m1", "Ada").max_loans == 3


def test_a_loan_is_open_until_returned():
    loan = Loan(1, "b1", "m1", borrowed=date(2024, 3, 1), due=date(2024, 3, 15))
    assert loan.open
    loan.returned = date(2024, 3, 10)
    assert not loan.open
```'''

TEST_CATALOG = r'''```python
import pytest

from lending_library.catalog import Catalog
from lending_library.errors import DuplicateError, NotFoundError
from lending_library.models import Book


def test_add_get_and_list():
    catalog = Catalog([Book("b2", "Emma", "Austen"), Book("b1", "Dune", "Herbert", copies=2)])
    assert catalog.get("b1").copies == 2
    assert [b.book_id for b in catalog.all()] == ["b1", "b2"]


def test_search_by_title_or_author_ignores_case():
    catalog = Catalog([Book("b1", "Dune", "Frank Herbert"), Book("b2", "Emma", "Jane Austen"),
                       Book("b3", "Persuasion", "Jane Austen")])
    assert [b.title for b in catalog.search("AUSTEN")] == ["Emma", "Persuasion"]
    assert catalog.search("zzz") == []


def test_bad_books_are_refused():
    catalog = Catalog([Book("b1", "Dune", "Herbert")])
    with pytest.raises(DuplicateError):
        catalog.add(Book("b1", "Other", "X"))
    with pytest.raises(ValueError):
        catalog.add(Book("b9", "None", "X", copies=0))
    with pytest.raises(NotFoundError):
        catalog.get("nope")
```'''

TEST_MEMBERS = r'''```python
import pytest

from lending_library.errors import DuplicateError, NotFoundError
from lending_library.members import MemberRegistry
from lending_library.models import Member


def test_join_and_get():
    registry = MemberRegistry([Member("m2", "Bo"), Member("m1", "Ada", max_loans=1)])
    assert registry.get("m1").max_loans == 1
    assert [m.member_id for m in registry.all()] == ["m1", "m2"]


def test_bad_members_are_refused():
    registry = MemberRegistry([Member("m1", "Ada")])
    with pytest.raises(DuplicateError):
        registry.join(Member("m1", "Again"))
    with pytest.raises(ValueError):
        registry.join(Member("m2", "  "))
    with pytest.raises(ValueError):
        registry.join(Member("m3", "Cy", max_loans=0))
    with pytest.raises(NotFoundError):
        registry.get("m9")
```'''

TEST_FINES = r'''These tests check the acceptance criteria that touch this module:

```python
from datetime import date

from lending_library.fines import FinePolicy, format_cents
from lending_library.models import Loan


def _loan(returned=None):
    return Loan(1, "b1", "m1", borrowed=date(2024, 3, 1), due=date(2024, 3, 15), returned=returned)


def test_no_fine_within_the_grace_period():
    policy = FinePolicy()
    assert policy.fine(_loan(), date(2024, 3, 17)) == 0
    assert policy.days_late(_loan(), date(2024, 3, 10)) == 0


def test_every_late_day_counts_after_the_grace_period():
    assert FinePolicy().fine(_loan(), date(2024, 3, 20)) == 5 * 25


def test_the_fine_is_capped_and_stops_at_the_return():
    assert FinePolicy().fine(_loan(), date(2025, 1, 1)) == 1000
    assert FinePolicy().fine(_loan(returned=date(2024, 3, 19)), date(2025, 1, 1)) == 100


def test_format_cents():
    assert format_cents(125) == "1.25" and format_cents(5) == "0.05"
```'''

TEST_STORAGE = r'''```python
from datetime import date

import pytest

from lending_library import storage
from lending_library.errors import LibraryError
from lending_library.models import Book, Loan, Member


def test_a_missing_file_is_an_empty_library(tmp_path):
    assert storage.load(tmp_path / "none.json") == ([], [], [])


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "lib.json"
    books = [Book("b1", "Dune", "Herbert", 2)]
    members = [Member("m1", "Ada")]
    loans = [Loan(1, "b1", "m1", date(2024, 3, 1), date(2024, 3, 15)),
             Loan(2, "b1", "m1", date(2024, 3, 2), date(2024, 3, 16), returned=date(2024, 3, 5))]
    storage.save(path, books, members, loans)
    assert storage.load(path) == (books, members, loans)


def test_a_broken_file_is_a_library_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"books": [{"title": 1}]}')
    with pytest.raises(LibraryError, match="not a library file"):
        storage.load(path)
```'''

TEST_REPORTS = r'''```python
from datetime import date

from lending_library.models import Loan
from lending_library.reports import overdue, overdue_lines, owed

TODAY = date(2024, 4, 1)


def _loans():
    return [
        Loan(1, "b1", "m1", date(2024, 3, 1), date(2024, 3, 15)),
        Loan(2, "b2", "m2", date(2024, 3, 10), date(2024, 3, 24)),
        Loan(3, "b3", "m1", date(2024, 3, 1), date(2024, 3, 15), returned=date(2024, 3, 14)),
        Loan(4, "b4", "m2", date(2024, 3, 25), date(2024, 4, 8)),
    ]


def test_overdue_lists_open_late_loans_longest_first():
    loans = _loans()
    assert overdue(loans, TODAY) == [loans[0], loans[1]]


def test_owed_sums_fines_per_member():
    assert owed(_loans(), TODAY) == {"m1": 425, "m2": 200}


def test_overdue_lines_describe_each_loan():
    lines = overdue_lines(_loans(), TODAY)
    assert lines[0] == "1: b1 to m1, due 2024-03-15, 17 days late, fine 4.25"
    assert len(lines) == 2
```'''

TEST_LOANS = r'''These tests check the acceptance criteria that touch this module:

```python
from datetime import date

import pytest

from lending_library.catalog import Catalog
from lending_library.errors import LoanError, NotFoundError
from lending_library.loans import LOAN_DAYS, LoanDesk
from lending_library.members import MemberRegistry
from lending_library.models import Book, Member

DAY = date(2024, 3, 1)


def _desk():
    return LoanDesk(Catalog([Book("b1", "Dune", "Herbert", copies=1), Book("b2", "Emma", "Austen", copies=3)]),
                    MemberRegistry([Member("m1", "Ada", max_loans=2), Member("m2", "Bo")]))


def test_checkout_sets_the_due_date_and_takes_a_copy():
    desk = _desk()
    loan = desk.checkout("b1", "m1", DAY)
    assert (loan.loan_id, loan.due) == (1, date(2024, 3, 1 + LOAN_DAYS))
    assert desk.available("b1") == 0
    with pytest.raises(LoanError, match="no copy"):
        desk.checkout("b1", "m2", DAY)


def test_a_member_borrows_at_most_max_loans():
    desk = _desk()
    desk.checkout("b2", "m1", DAY)
    desk.checkout("b2", "m1", DAY)
    with pytest.raises(LoanError, match="already has 2"):
        desk.checkout("b2", "m1", DAY)


def test_returning_frees_the_copy_and_reports_the_fine():
    desk = _desk()
    loan = desk.checkout("b1", "m1", DAY)
    assert desk.give_back(loan.loan_id, date(2024, 3, 20)) == 25 * 5
    assert desk.available("b1") == 1
    with pytest.raises(LoanError, match="already returned"):
        desk.give_back(loan.loan_id, date(2024, 3, 21))
    with pytest.raises(NotFoundError):
        desk.give_back(99, DAY)
```'''

TEST_SERVICE = r'''```python
from datetime import date

from lending_library.service import Library


def test_state_survives_a_save_and_reload(tmp_path):
    path = tmp_path / "lib.json"
    library = Library(path)
    library.add_book("b1", "Dune", "Herbert")
    library.join("m1", "Ada")
    loan = library.checkout("b1", "m1", date(2024, 3, 1))
    library.save()
    again = Library(path)
    assert again.catalog.get("b1").title == "Dune"
    assert again.desk.open_loans("m1")[0].loan_id == loan.loan_id


def test_reports_through_the_library(tmp_path):
    library = Library(tmp_path / "lib.json")
    library.add_book("b1", "Dune", "Herbert")
    library.join("m1", "Ada")
    library.checkout("b1", "m1", date(2024, 3, 1))
    assert library.overdue_report(date(2024, 3, 20)) == ["1: b1 to m1, due 2024-03-15, 5 days late, fine 1.25"]
    assert library.balances(date(2024, 3, 20)) == {"m1": 125}
```'''

TEST_CLI = r'''```python
from lending_library.__main__ import main


def _run(tmp_path, *args):
    return main(["--file", str(tmp_path / "lib.json"), "--today", "2024-03-01", *args])


def test_a_loan_from_the_command_line(tmp_path, capsys):
    assert _run(tmp_path, "add-book", "b1", "Dune", "Herbert") == 0
    assert _run(tmp_path, "join", "m1", "Ada") == 0
    assert _run(tmp_path, "checkout", "b1", "m1") == 0
    assert "loan 1: due 2024-03-15" in capsys.readouterr().out
    assert main(["--file", str(tmp_path / "lib.json"), "--today", "2024-03-20", "overdue"]) == 0
    assert "5 days late" in capsys.readouterr().out


def test_errors_go_to_stderr_with_status_1(tmp_path, capsys):
    assert _run(tmp_path, "checkout", "b9", "m1") == 1
    assert capsys.readouterr().err.startswith("error: no member m1")
    assert _run(tmp_path, "return", "7") == 1
```'''

FIX = r'''`overdue` returns a generator expression, so comparing it with a list fails (and it can only be read once). Return a list instead:

lending_library/reports.py
```python
"""Reports: overdue loans, and what each member owes."""

from __future__ import annotations

from datetime import date

from lending_library.clock import days_between, format_date
from lending_library.fines import FinePolicy, format_cents
from lending_library.models import Loan


def overdue(loans: list[Loan], today: date) -> list[Loan]:
    """Open loans past their due date, the longest overdue first."""
    return [l for l in sorted(loans, key=lambda l: (l.due, l.loan_id)) if l.open and l.due < today]


def owed(loans: list[Loan], today: date, policy: FinePolicy | None = None) -> dict[str, int]:
    """Cents owed per member, for members who owe anything."""
    policy = policy or FinePolicy()
    totals: dict[str, int] = {}
    for loan in loans:
        cents = policy.fine(loan, today)
        if cents:
            totals[loan.member_id] = totals.get(loan.member_id, 0) + cents
    return dict(sorted(totals.items()))


def overdue_lines(loans: list[Loan], today: date, policy: FinePolicy | None = None) -> list[str]:
    policy = policy or FinePolicy()
    return [
        f"{l.loan_id}: {l.book_id} to {l.member_id}, due {format_date(l.due)}, "
        f"{days_between(l.due, today)} days late, fine {format_cents(policy.fine(l, today))}"
        for l in overdue(loans, today)
    ]
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [PRD],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [CODE_ERRORS, CODE_CLOCK, CODE_MODELS, CODE_CATALOG, CODE_MEMBERS, CODE_FINES, CODE_STORAGE, CODE_REPORTS, CODE_LOANS, CODE_SERVICE, CODE_INIT, CODE_MAIN],
    ("QaEngineer", "WriteTests"): [TEST_ERRORS, TEST_CLOCK, TEST_MODELS, TEST_CATALOG, TEST_MEMBERS, TEST_FINES, TEST_STORAGE, TEST_REPORTS, TEST_LOANS, TEST_SERVICE, TEST_CLI],
    ("Engineer", "FixBug"): [FIX],
}
