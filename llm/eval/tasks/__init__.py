"""The code task bank: small Python programming tasks with executable checks.

Each task is written out by hand in one family module (``strings.py``, ``lists.py``...):
an interface, a description, a reference solution, a WRONG solution (a plausible bug the
hidden tests must catch) and the hidden tests, mostly as ``(expression, expected)`` pairs
that become a pytest file. The prompt is phrased the way the company's engineer receives a
file to write (:class:`mgpt.actions.coding.WriteCode`): "Write the file `X.py` ... Reply
with the complete file in one ```python code block."

Splits (deterministic, nothing random):

- the families in :data:`HELD_OUT_FAMILIES` are test-only: a model trained on the train
  split has never seen a task of that kind;
- in every other family a task is in the test split when the first byte of
  ``sha256(task id)`` is below :data:`TEST_SHARE` x 256, else in train. Adding a task never
  moves another.

``tests/llm/eval/test_taskbank.py`` checks, for every task, that the reference passes its tests and
the wrong solution fails them.
"""

from __future__ import annotations

import hashlib
import importlib
import textwrap
from dataclasses import dataclass
from typing import Iterable

__all__ = ["FAMILIES", "HELD_OUT_FAMILIES", "SPLITS", "TEST_SHARE", "CodeTask", "T", "load_tasks", "split_of"]

#: Every family module, in a fixed order.
FAMILIES = ("strings", "lists", "parsing", "dates", "classes", "cli", "counting", "math", "recursion", "formatting")
#: Families that are entirely in the test split.
HELD_OUT_FAMILIES = ("dates", "recursion")
#: Share of the other families' tasks that are in the test split.
TEST_SHARE = 0.3
SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class CodeTask:
    """One task. ``id`` is also the module the candidate writes (``<id>.py``)."""

    id: str
    family: str
    interface: str
    description: str
    reference: str
    wrong: str
    tests: str
    """A pytest file that imports the module ``id``."""

    @property
    def filename(self) -> str:
        return f"{self.id}.py"

    @property
    def test_filename(self) -> str:
        return f"test_{self.id}.py"

    @property
    def split(self) -> str:
        return split_of(self.id, self.family)

    @property
    def prompt(self) -> str:
        """The request as the engineer role receives a file to write."""
        return (
            f"Write the file `{self.filename}` (module `{self.id}`).\n"
            f"Task: {self.description}\n\n"
            f"Interface:\n{self.interface}\n\n"
            "Use only the standard library. Reply with the complete file in one ```python code block."
        )


def split_of(task_id: str, family: str) -> str:
    """``test`` or ``train`` (see the module docstring)."""
    if family in HELD_OUT_FAMILIES:
        return "test"
    return "test" if hashlib.sha256(task_id.encode()).digest()[0] < TEST_SHARE * 256 else "train"


def _render_tests(module: str, cases: Iterable[tuple[str, str]], raises: Iterable[tuple[str, str]], extra: str) -> str:
    lines = ["import pytest", "", f"from {module} import *  # noqa: F401,F403", ""]
    for i, (expr, expected) in enumerate(cases):
        lines += ["", f"def test_case_{i}():", f"    assert ({expr}) == ({expected})", ""]
    for i, (expr, exc) in enumerate(raises):
        lines += ["", f"def test_raises_{i}():", f"    with pytest.raises({exc}):", f"        {expr}", ""]
    if extra:
        lines += ["", textwrap.dedent(extra).strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


class T:
    """A task as written in a family module; :func:`load_tasks` turns it into a
    :class:`CodeTask` with its family and rendered tests."""

    def __init__(self, id: str, interface: str, description: str, reference: str, wrong: str,
                 cases: Iterable[tuple[str, str]] = (), raises: Iterable[tuple[str, str]] = (), tests: str = ""):
        self.id, self.interface, self.description = id, textwrap.dedent(interface).strip(), " ".join(description.split())
        self.reference = textwrap.dedent(reference).strip() + "\n"
        self.wrong = textwrap.dedent(wrong).strip() + "\n"
        self.cases, self.raises, self.tests = list(cases), list(raises), tests

    def build(self, family: str) -> CodeTask:
        return CodeTask(self.id, family, self.interface, self.description, self.reference, self.wrong,
                        _render_tests(self.id, self.cases, self.raises, self.tests))


def load_tasks(split: str = "all", families: Iterable[str] | None = None) -> list[CodeTask]:
    """The tasks of ``split`` (``train``, ``test`` or ``all``), optionally of some families only."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    wanted = list(families) if families else list(FAMILIES)
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}: "
                         f"use {', '.join(FAMILIES)}")
    tasks = []
    for family in wanted:
        module = importlib.import_module(f"{__name__}.{family}")
        tasks += [t.build(family) for t in module.TASKS]
    return [t for t in tasks if split == "all" or t.split == split]
