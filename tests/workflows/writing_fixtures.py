"""A tiny documentation corpus and scripted answers for the writers' room tests."""

from __future__ import annotations

import json
from pathlib import Path

FUNCTIONS = """\
Built-in Functions
******************

.. function:: sorted(iterable, /, *, key=None, reverse=False)

   Return a new sorted list from the items in *iterable*.

   Has two optional arguments which must be specified as keyword arguments.

   *key* specifies a function of one argument that is used to extract a comparison
   key from each element in *iterable* (for example, ``key=str.lower``).

.. function:: len(s)

   Return the length (the number of items) of an object.
"""

OPERATOR = """\
:mod:`operator` --- Standard operators as functions
===================================================

.. module:: operator

.. function:: itemgetter(item)

   Return a callable object that fetches *item* from its operand using the
   operand's :meth:`__getitem__` method.
"""

HOWTO = """\
Sorting HOW TO
**************

Python lists have a built-in :meth:`list.sort` method that modifies the list
in-place.  There is also a :func:`sorted` built-in function that builds a new
sorted list from an iterable.

Key Functions
=============

Both :meth:`list.sort` and :func:`sorted` have a *key* parameter to specify a
function (or other callable) to be called on each list element prior to making
comparisons, and :func:`operator.itemgetter` makes such functions.
"""

#: A library page that quotes the HOWTO word for word: the leak guard must drop it.
QUOTING = """\
Sorting notes
=============

As the tutorial says, both list.sort and sorted have a key parameter to specify a
function (or other callable) to be called on each list element prior to making
comparisons.
"""


def make_corpus(root: Path, *, howto: bool = False) -> Path:
    """library/ (and howto/) pages under ``root``; returns the library folder."""
    lib = root / "library"
    lib.mkdir(parents=True)
    (lib / "functions.rst.txt").write_text(FUNCTIONS)
    (lib / "operator.rst.txt").write_text(OPERATOR)
    if howto:
        (root / "howto").mkdir()
        (root / "howto" / "sorting.rst.txt").write_text(HOWTO)
        (lib / "sortnotes.rst.txt").write_text(QUOTING)
    return lib


def outline(*headings: str) -> str:
    return json.dumps({"title": "Sorting in Python",
                       "sections": [{"heading": h, "covers": f"how {h.lower()} works"} for h in headings]})


def verdict(approved: bool = True, notes: list[tuple[int, str]] = ()) -> str:
    return json.dumps({"approved": approved, "notes": [{"section": s, "problem": p} for s, p in notes]})


GOOD_1 = '''Use sorted: it will "Return a new sorted list from the items in iterable" [1].

```python
print(sorted([3, 1, 2]))
```
'''

GOOD_2 = '''A key function extracts "a comparison key from each element" [1].

```python
>>> sorted(["b", "A", "c"], key=str.lower)
['A', 'b', 'c']
```
'''

FAILING_1 = '''Use sorted: it will "Return a new sorted list from the items in iterable" [1].

```python
print(sorted([3, 1, 2], key=str.lower))
```
'''
