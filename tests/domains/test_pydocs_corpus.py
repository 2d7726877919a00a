"""The Python documentation as a corpus: reST as text, passages per API object, the HOWTOs'
API names and coverage, and the leak guard."""

from __future__ import annotations

import pytest

from mgpt.domains.pydocs.corpus import CorpusError, Page, load_corpus, split_page
from mgpt.domains.pydocs.howtos import LeakGuard, api_coverage, api_names, howtos, retrieval_pairs
from mgpt.domains.pydocs.rst import rst_to_text

STDTYPES = """\
Built-in Types
**************

.. index:: pair: built-in; types

Some prose about types, long enough to be a passage of its own, and then some more words.

.. class:: list([iterable])

   Lists may be constructed in several ways.

   .. method:: list.sort(*, key=None, reverse=False)

      This method sorts the list in place, using only ``<`` comparisons
      between items.

      .. versionadded:: 3.2

   .. method:: count(x)

      Return the number of times *x* appears in the list, as :func:`len` would not.

   The rest of the class body after its methods, which is also long enough to keep.
"""


def test_rst_becomes_the_text_a_reader_sees():
    text = rst_to_text(".. _label:\n\nTitle\n=====\n\n:Author: Someone\n\nUse :func:`~functools.cmp_to_key` or "
                       ":meth:`list.sort`, ``literal`` and *emphasis*; see :ref:`the guide <guide>`::\n\n"
                       "    >>> 1 + 1\n    2\n\n.. note::\n\n   Careful.\n\n.. versionchanged:: 3.8\n   Why.\n")
    assert "label" not in text and "Author" not in text and "=====" not in text
    assert "Use cmp_to_key() or list.sort(), `literal` and emphasis; see the guide:" in text
    assert "    >>> 1 + 1\n    2" in text and "Note:" in text and "Changed in version 3.8." in text


def test_a_page_splits_into_one_passage_per_api_object_with_its_qualified_name():
    passages = split_page(Page("library/stdtypes", "Built-in Types", STDTYPES))
    by_api = {p.api: p for p in passages if p.api}
    assert list(by_api) == ["list", "list.sort", "list.count"]
    assert by_api["list.sort"].text.startswith("list.sort(*, key=None, reverse=False)")
    assert "New in version 3.2." in by_api["list.sort"].text and by_api["list.sort"].heading == "sort"
    assert "as len() would not" in by_api["list.count"].text
    assert any("rest of the class body" in p.text and p.api == "list" for p in passages)
    assert any(p.text.startswith("Some prose about types") and not p.api for p in passages)


def test_a_module_qualifies_its_functions(tmp_path):
    (tmp_path / "functools.rst.txt").write_text(
        ":mod:`functools` --- Higher-order functions\n=====\n\n.. module:: functools\n\n"
        ".. function:: cmp_to_key(func)\n\n   Transform an old-style comparison function to a key function.\n")
    corpus = load_corpus(tmp_path)
    [passage] = corpus.passages()
    assert passage.api == "functools.cmp_to_key" and corpus.pages["functools"].title.startswith("functools ---")


def test_a_missing_or_empty_sources_folder_says_how_to_get_the_docs(tmp_path):
    with pytest.raises(CorpusError, match="apt-get install python3.11-doc"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus(tmp_path)


def test_api_names_and_their_coverage():
    names = api_names("Use :meth:`list.sort`, :func:`sorted`, :func:`~functools.cmp_to_key` and "
                      ":class:`the type <str>`; :func:`sorted` again, :func:`!print()`.")
    assert names == ["list.sort", "sorted", "functools.cmp_to_key", "str", "print"]
    text = "Call `sorted(xs)`.\n\n```python\nxs.sort(key=str.lower)\n```\n\nAlso functools.cmp_to_key helps."
    assert api_coverage(names, text) == (4, 5)  # print is not used
    assert api_coverage(["list.sort"], "sorting a list is easy") == (0, 1)  # prose words are not the API


def test_the_leak_guard_finds_quotations_not_shared_boilerplate():
    howto = ("Both list.sort and sorted have a key parameter to specify a function to be called on each list "
             "element prior to making comparisons.\n\n>>> sorted(range(12))\n[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n"
             "Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\nTypeError: no\n")
    guard = LeakGuard(howto)
    quoting = Page("a", "A", "They say: both list.sort and sorted have a key parameter to specify a function to be "
                             "called, which is true.")
    boilerplate = Page("b", "B", ">>> list(range(12))\n[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\nTraceback (most "
                                 "recent call last):\n  File \"<stdin>\", line 1, in <module>\nTypeError: other\n")
    assert guard.quoting([quoting, boilerplate]) == ["a"]
    assert guard.leak("a key parameter to specify") is None


def test_howtos_and_their_retrieval_pairs(tmp_path):
    (tmp_path / "howto").mkdir()
    (tmp_path / "library").mkdir()
    (tmp_path / "howto" / "index.rst.txt").write_text("HOWTOs\n======\n")
    (tmp_path / "howto" / "sorting.rst.txt").write_text(
        "Sorting HOW TO\n**************\n\nIntro.\n\nBasics\n======\n\nCall :meth:`list.sort` or :func:`len`.\n")
    (tmp_path / "library" / "stdtypes.rst.txt").write_text(STDTYPES)
    corpus = load_corpus(tmp_path)
    [howto] = howtos(corpus)
    assert (howto.name, howto.title, howto.apis) == ("sorting", "Sorting HOW TO", ["list.sort", "len"])
    pairs = retrieval_pairs(howto, corpus.passages())
    assert [(q, p.api) for q, p in pairs] == [("Sorting HOW TO: Basics", "list.sort")]  # len: not in this corpus


@pytest.mark.slow
def test_the_python_docs_hold_nineteen_howtos_and_the_guard_drops_the_pages_quoting_them():
    from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES

    if not (DEBIAN_SOURCES / "howto" / "sorting.rst.txt").is_file():
        pytest.skip("python3.11-doc is not installed (apt-get install python3.11-doc)")
    corpus = load_corpus(DEBIAN_SOURCES, under=["library", "howto"])
    tasks = {h.name: h for h in howtos(corpus)}
    assert len(tasks) == 19 and tasks["sorting"].title == "Sorting HOW TO"
    assert {"list.sort", "sorted", "functools.cmp_to_key", "operator.itemgetter"} <= set(tasks["sorting"].apis)
    _, removed = tasks["enum"].sources(corpus)
    assert removed == ["howto/enum", "library/enum"]
    kept, _ = tasks["sorting"].sources(corpus)
    assert any(p.api == "list.sort" for p in kept.passages())
