"""Incremental golden app: due dates for the todo list of ``tests/golden/todo_cli.jsonl``.

The base project is what that golden transcript builds; this script holds what a model
answered at each step of ``mgpt run "..." --inc`` on it (``ANSWERS``, keyed by role and
action, in turn order). store.py and __main__.py change; __init__.py stays as it is.
"""

BASE = "todo_cli"

IDEA = "add due dates: a todo can have a due date, the list shows it, and an overdue command lists late todos"

CHANGE = '''```json
{
  "title": "due dates",
  "summary": "Todos can carry an optional due date (YYYY-MM-DD); the list shows it and a new overdue command lists open todos whose due date has passed.",
  "user_stories": [
    "As a user, I want to give a todo a due date so that I know when it must be done",
    "As a user, I want to see overdue todos so that I do the late ones first"
  ],
  "requirements": [
    {"id": "R1", "text": "add TEXT [--due YYYY-MM-DD] creates a todo with a unique integer id and an optional due date", "priority": "P0"},
    {"id": "R2", "text": "list prints every todo with its id, a [x] or [ ] mark, and (due YYYY-MM-DD) when it has a due date", "priority": "P0"},
    {"id": "R6", "text": "overdue [--today YYYY-MM-DD] lists the open todos whose due date is before today", "priority": "P0"},
    {"id": "R7", "text": "a due date that is not a valid YYYY-MM-DD date is rejected with an error and exit status 1", "priority": "P1"}
  ],
  "removed_requirements": [],
  "acceptance_criteria": [
    "A todo added with --due 2030-01-31 is listed with (due 2030-01-31)",
    "A todo without a due date is listed exactly as before",
    "overdue --today 2024-05-10 lists an open todo due 2024-05-01 but not one due 2024-05-20",
    "A done todo is never listed as overdue",
    "add --due 2024-02-30 fails with exit status 1",
    "A todo file written before due dates existed still loads"
  ],
  "anything_unclear": ""
}
```'''

DESIGN = '''```json
{
  "implementation_approach": "Todo gets an optional due field (an ISO date string or None) with a default, so todo files written before the change still load. TodoStore.add takes due and validates it with date.fromisoformat; a new TodoStore.overdue(today) returns open todos due before today. The command line adds --due to add, shows the due date in list, and adds an overdue subcommand with --today (default: the real date) so it is testable.",
  "changed_files": [
    {"path": "todo_cli/store.py", "purpose": "Todo dataclass with an optional due date; TodoStore with JSON persistence, due date validation and overdue(today)"},
    {"path": "todo_cli/__main__.py", "purpose": "argparse command line: add (with --due), list (shows due dates), done, remove, overdue"}
  ],
  "new_files": [],
  "class_diagram": "classDiagram\\n    class Todo {\\n        +int id\\n        +str text\\n        +bool done\\n        +str|None due\\n    }\\n    class TodoStore {\\n        +Path path\\n        +list~Todo~ todos\\n        +load(path) TodoStore\\n        +add(text, due) Todo\\n        +complete(todo_id) Todo\\n        +remove(todo_id) Todo\\n        +overdue(today) list~Todo~\\n        +save() None\\n    }\\n    TodoStore o-- Todo",
  "sequence_diagram": "sequenceDiagram\\n    participant U as User\\n    participant M as main\\n    participant S as TodoStore\\n    U->>M: todo_cli overdue --today 2024-05-10\\n    M->>S: load(path)\\n    M->>S: overdue(today)\\n    S-->>M: list of Todo\\n    M-->>U: 1. [ ] pay rent (due 2024-05-01)",
  "anything_unclear": ""
}
```'''

TASKS = '''{
  "tasks": [
    {"path": "todo_cli/store.py", "description": "add due: str | None = None to Todo; add(text, due=None) validates due with date.fromisoformat and stores it in ISO form, raising ValueError for a bad date; add overdue(today: date) returning open todos with due < today, in id order", "depends_on": []},
    {"path": "todo_cli/__main__.py", "description": "add --due to the add subcommand; list shows ' (due YYYY-MM-DD)' after the text when set; new overdue subcommand with --today (default date.today()) printing each overdue todo or 'No overdue todos.'; a bad date is an error with exit status 1", "depends_on": ["todo_cli/store.py"]}
  ]
}'''

STORE = '''```python
"""Todos and their JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path


@dataclass
class Todo:
    id: int
    text: str
    done: bool = False
    due: str | None = None  # ISO date, YYYY-MM-DD


def parse_due(value: str) -> str:
    """``value`` as an ISO date string; ValueError if it is not a real YYYY-MM-DD date."""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"due date must be YYYY-MM-DD, got {value!r}") from None


@dataclass
class TodoStore:
    path: Path
    todos: list[Todo] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "TodoStore":
        """Read todos from ``path``; a missing file is an empty list."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8") or "[]")
        return cls(path, [Todo(**item) for item in data])

    def add(self, text: str, due: str | None = None) -> Todo:
        text = text.strip()
        if not text:
            raise ValueError("todo text must not be empty")
        due = parse_due(due) if due is not None else None
        todo = Todo(id=max((t.id for t in self.todos), default=0) + 1, text=text, due=due)
        self.todos.append(todo)
        return todo

    def get(self, todo_id: int) -> Todo:
        for todo in self.todos:
            if todo.id == todo_id:
                return todo
        raise KeyError(todo_id)

    def complete(self, todo_id: int) -> Todo:
        todo = self.get(todo_id)
        todo.done = True
        return todo

    def remove(self, todo_id: int) -> Todo:
        todo = self.get(todo_id)
        self.todos.remove(todo)
        return todo

    def overdue(self, today: date) -> list[Todo]:
        """Open todos whose due date is before ``today``."""
        return [t for t in self.todos if not t.done and t.due is not None and date.fromisoformat(t.due) < today]

    def save(self) -> None:
        self.path.write_text(json.dumps([asdict(t) for t in self.todos], indent=2), encoding="utf-8")
```'''

MAIN = '''```python
"""Command line: python -m todo_cli [--file FILE] add|list|done|remove|overdue ..."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from todo_cli.store import Todo, TodoStore, parse_due


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo_cli", description="A todo list in a JSON file.")
    parser.add_argument("--file", default="todos.json", help="where todos are kept")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a todo")
    add.add_argument("text", nargs="+")
    add.add_argument("--due", help="due date, YYYY-MM-DD")
    sub.add_parser("list", help="list todos")
    for name in ("done", "remove"):
        cmd = sub.add_parser(name, help=f"{name} a todo by id")
        cmd.add_argument("id", type=int)
    overdue = sub.add_parser("overdue", help="list open todos past their due date")
    overdue.add_argument("--today", help="the date to compare with, YYYY-MM-DD (default: today)")
    return parser


def line(todo: Todo) -> str:
    due = f" (due {todo.due})" if todo.due else ""
    return f"{todo.id}. [{'x' if todo.done else ' '}] {todo.text}{due}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = TodoStore.load(args.file)
    try:
        if args.command == "add":
            todo = store.add(" ".join(args.text), due=args.due)
            print(f"Added {todo.id}: {todo.text}")
        elif args.command == "list":
            for todo in store.todos:
                print(line(todo))
            if not store.todos:
                print("No todos.")
        elif args.command == "done":
            todo = store.complete(args.id)
            print(f"Done {todo.id}: {todo.text}")
        elif args.command == "remove":
            todo = store.remove(args.id)
            print(f"Removed {todo.id}: {todo.text}")
        elif args.command == "overdue":
            today = date.fromisoformat(parse_due(args.today)) if args.today else date.today()
            late = store.overdue(today)
            for todo in late:
                print(line(todo))
            if not late:
                print("No overdue todos.")
    except KeyError as exc:
        print(f"error: no todo with id {exc.args[0]}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
```'''

TEST_STORE = '''```python
import json
from datetime import date

import pytest

from todo_cli.store import TodoStore


def test_add_with_due_date(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    todo = store.add("pay rent", due="2030-01-31")
    assert todo.due == "2030-01-31"
    assert store.add("no date").due is None


def test_invalid_due_date_rejected(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    with pytest.raises(ValueError):
        store.add("x", due="2024-02-30")
    with pytest.raises(ValueError):
        store.add("x", due="tomorrow")
    assert store.todos == []


def test_overdue_lists_open_todos_due_before_today(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    store.add("late", due="2024-05-01")
    store.add("later", due="2024-05-20")
    store.add("no date")
    done = store.add("late but done", due="2024-04-01")
    store.complete(done.id)
    assert [t.text for t in store.overdue(date(2024, 5, 10))] == ["late"]


def test_due_date_round_trip(tmp_path):
    path = tmp_path / "todos.json"
    store = TodoStore.load(path)
    store.add("pay rent", due="2030-01-31")
    store.save()
    assert TodoStore.load(path).todos[0].due == "2030-01-31"


def test_old_file_without_due_dates_loads(tmp_path):
    path = tmp_path / "todos.json"
    path.write_text(json.dumps([{"id": 1, "text": "old", "done": False}]), encoding="utf-8")
    todo = TodoStore.load(path).todos[0]
    assert (todo.text, todo.due) == ("old", None)
```'''

TEST_CLI = '''```python
from todo_cli.__main__ import main


def test_list_shows_due_date(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    assert main(["--file", path, "add", "pay", "rent", "--due", "2030-01-31"]) == 0
    assert main(["--file", path, "add", "walk"]) == 0
    capsys.readouterr()
    assert main(["--file", path, "list"]) == 0
    out = capsys.readouterr().out
    assert "1. [ ] pay rent (due 2030-01-31)" in out
    assert "2. [ ] walk\\n" in out


def test_overdue_command(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    main(["--file", path, "add", "late", "--due", "2024-05-01"])
    main(["--file", path, "add", "later", "--due", "2024-05-20"])
    capsys.readouterr()
    assert main(["--file", path, "overdue", "--today", "2024-05-10"]) == 0
    out = capsys.readouterr().out
    assert "late (due 2024-05-01)" in out
    assert "later" not in out


def test_no_overdue_todos(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    main(["--file", path, "add", "done soon", "--due", "2024-05-01"])
    main(["--file", path, "done", "1"])
    capsys.readouterr()
    assert main(["--file", path, "overdue", "--today", "2024-06-01"]) == 0
    assert "No overdue todos." in capsys.readouterr().out


def test_bad_due_date_fails(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    assert main(["--file", path, "add", "x", "--due", "2024-02-30"]) == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [CHANGE],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [STORE, MAIN],
    ("QaEngineer", "WriteTests"): [TEST_STORE, TEST_CLI],
}
