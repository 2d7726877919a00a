"""Golden app: a todo list on the command line, stored in a JSON file."""

IDEA = "build a todo app: a command-line todo list that keeps its items in a JSON file"

PRD = '''Here is the PRD for the todo app.

```json
{
  "project_name": "todo_cli",
  "summary": "A command-line todo list that stores items in a JSON file so they survive between runs.",
  "goals": ["Add, list, complete and remove todos from the terminal", "Keep todos in a plain JSON file"],
  "user_stories": [
    "As a user, I want to add a todo so that I remember a task",
    "As a user, I want to list my todos so that I see what is left",
    "As a user, I want to mark a todo done so that I track progress",
    "As a user, I want to remove a todo so that the list stays short"
  ],
  "requirements": [
    {"id": "R1", "text": "add TEXT creates a todo with a unique integer id", "priority": "P0"},
    {"id": "R2", "text": "list prints every todo with its id and a [x] or [ ] mark", "priority": "P0"},
    {"id": "R3", "text": "done ID marks a todo as done", "priority": "P0"},
    {"id": "R4", "text": "remove ID deletes a todo", "priority": "P1"},
    {"id": "R5", "text": "todos are saved to a JSON file given by --file", "priority": "P0"}
  ],
  "acceptance_criteria": [
    "Adding two todos gives them ids 1 and 2",
    "A todo marked done is listed with [x]",
    "Removing an unknown id reports an error and exits with status 1",
    "Todos added in one run are listed in the next run from the same file",
    "Empty todo text is rejected"
  ],
  "anything_unclear": ""
}
```'''

DESIGN = '''```json
{
  "implementation_approach": "A small package: a Todo dataclass and a TodoStore that loads and saves a JSON file, plus an argparse command line in __main__.py with add, list, done and remove subcommands. Ids increase from the largest id seen so they stay unique after removals.",
  "files": [
    {"path": "todo_cli/__init__.py", "purpose": "package marker exporting Todo and TodoStore"},
    {"path": "todo_cli/store.py", "purpose": "Todo dataclass and TodoStore with JSON persistence"},
    {"path": "todo_cli/__main__.py", "purpose": "argparse command line: add, list, done, remove"}
  ],
  "class_diagram": "classDiagram\\n    class Todo {\\n        +int id\\n        +str text\\n        +bool done\\n    }\\n    class TodoStore {\\n        +Path path\\n        +list~Todo~ todos\\n        +load(path) TodoStore\\n        +add(text) Todo\\n        +complete(todo_id) Todo\\n        +remove(todo_id) Todo\\n        +save() None\\n    }\\n    TodoStore o-- Todo",
  "sequence_diagram": "sequenceDiagram\\n    participant U as User\\n    participant M as main\\n    participant S as TodoStore\\n    U->>M: todo_cli add \\"buy milk\\"\\n    M->>S: load(path)\\n    M->>S: add(text)\\n    S-->>M: Todo\\n    M->>S: save()\\n    M-->>U: Added 1: buy milk",
  "anything_unclear": ""
}
```'''

TASKS = '''{
  "tasks": [
    {"path": "todo_cli/store.py", "description": "Todo dataclass (id, text, done) and TodoStore: load(path) reads the JSON list or starts empty, add validates non-empty text and assigns max id + 1, complete and remove raise KeyError for unknown ids, save writes JSON", "depends_on": []},
    {"path": "todo_cli/__init__.py", "description": "re-export Todo and TodoStore", "depends_on": ["todo_cli/store.py"]},
    {"path": "todo_cli/__main__.py", "description": "main(argv) with argparse subcommands add/list/done/remove and a --file option (default todos.json); print results; return 1 with a message on stderr for unknown ids or empty text", "depends_on": ["todo_cli/store.py"]}
  ]
}'''

STORE = '''```python
"""Todos and their JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Todo:
    id: int
    text: str
    done: bool = False


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

    def add(self, text: str) -> Todo:
        text = text.strip()
        if not text:
            raise ValueError("todo text must not be empty")
        todo = Todo(id=max((t.id for t in self.todos), default=0) + 1, text=text)
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

    def save(self) -> None:
        self.path.write_text(json.dumps([asdict(t) for t in self.todos], indent=2), encoding="utf-8")
```'''

INIT = '''```python
"""A command-line todo list."""

from todo_cli.store import Todo, TodoStore

__all__ = ["Todo", "TodoStore"]
```'''

MAIN = '''Here is the command line:

```python
"""Command line: python -m todo_cli [--file FILE] add|list|done|remove ..."""

from __future__ import annotations

import argparse
import sys

from todo_cli.store import TodoStore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo_cli", description="A todo list in a JSON file.")
    parser.add_argument("--file", default="todos.json", help="where todos are kept")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a todo")
    add.add_argument("text", nargs="+")
    sub.add_parser("list", help="list todos")
    for name in ("done", "remove"):
        cmd = sub.add_parser(name, help=f"{name} a todo by id")
        cmd.add_argument("id", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = TodoStore.load(args.file)
    try:
        if args.command == "add":
            todo = store.add(" ".join(args.text))
            print(f"Added {todo.id}: {todo.text}")
        elif args.command == "list":
            for todo in store.todos:
                print(f"{todo.id}. [{'x' if todo.done else ' '}] {todo.text}")
            if not store.todos:
                print("No todos.")
        elif args.command == "done":
            todo = store.complete(args.id)
            print(f"Done {todo.id}: {todo.text}")
        elif args.command == "remove":
            todo = store.remove(args.id)
            print(f"Removed {todo.id}: {todo.text}")
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
import pytest

from todo_cli.store import TodoStore


def test_ids_are_sequential(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    assert store.add("a").id == 1
    assert store.add("b").id == 2


def test_ids_stay_unique_after_remove(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    store.add("a")
    store.add("b")
    store.remove(1)
    assert store.add("c").id == 3


def test_complete_marks_done(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    todo = store.add("a")
    store.complete(todo.id)
    assert store.get(todo.id).done


def test_unknown_id_raises(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    with pytest.raises(KeyError):
        store.remove(42)


def test_empty_text_rejected(tmp_path):
    store = TodoStore.load(tmp_path / "todos.json")
    with pytest.raises(ValueError):
        store.add("   ")


def test_round_trip(tmp_path):
    path = tmp_path / "todos.json"
    store = TodoStore.load(path)
    store.add("write tests")
    store.complete(1)
    store.save()
    again = TodoStore.load(path)
    assert [(t.id, t.text, t.done) for t in again.todos] == [(1, "write tests", True)]
```'''

TEST_CLI = '''```python
from todo_cli.__main__ import main


def test_add_then_list(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    assert main(["--file", path, "add", "buy", "milk"]) == 0
    assert main(["--file", path, "add", "walk"]) == 0
    assert main(["--file", path, "done", "1"]) == 0
    capsys.readouterr()
    assert main(["--file", path, "list"]) == 0
    out = capsys.readouterr().out
    assert "1. [x] buy milk" in out
    assert "2. [ ] walk" in out


def test_remove_unknown_id_fails(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    assert main(["--file", path, "remove", "7"]) == 1
    assert "no todo with id 7" in capsys.readouterr().err


def test_empty_list(tmp_path, capsys):
    assert main(["--file", str(tmp_path / "t.json"), "list"]) == 0
    assert "No todos." in capsys.readouterr().out
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [PRD],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [STORE, INIT, MAIN],
    ("QaEngineer", "WriteTests"): [TEST_STORE, TEST_CLI],
}
