"""The Python HOWTOs as writing tasks: their titles, the API names they cover, and the guard
that keeps their text out of a writer's prompts.

A HOWTO (``howto/sorting``) is a task: its title is the brief, its text the reference a
written document is scored against, and the ``:func:``, ``:class:`` and ``:meth:``
targets it names (:func:`api_names`) the API a good answer covers (:func:`api_coverage`).

:class:`LeakGuard` holds a HOWTO's word n-grams (:data:`SHINGLE_WORDS` words in a row). A page
that shares one quotes the HOWTO and is removed from the sources (:meth:`LeakGuard.quoting`);
a text that shares one must not reach a prompt (:meth:`LeakGuard.check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from mgpt.agents.errors import MgptError
from mgpt.domains.pydocs.corpus import Corpus, Page, Passage
from mgpt.domains.pydocs.rst import rst_to_text

__all__ = ["SHINGLE_WORDS", "Howto", "LeakGuard", "SourceLeak", "api_coverage", "api_names", "howtos",
           "markdown_code", "retrieval_pairs"]

#: Words in a row that, shared with a HOWTO, make a text a quote of it. Twelve words repeated
#: verbatim are a quotation, not a coincidence; the API names and short code lines that any
#: page about the same functions shares are shorter than that.
SHINGLE_WORDS = 12
#: HOWTOs that are an index, not a document.
_NOT_TASKS = {"howto/index"}

_API_ROLE = re.compile(r":(?:py:)?(func|class|meth):`([^`]+)`")
#: Words for shingles: numbers are left out (``0 1 2 3 ...`` is no quotation).
_WORD = re.compile(r"[^\W\d_]\w*")
#: Lines every interactive session shares: a traceback's header and its stdin frames.
_BOILERPLATE = re.compile(r"^.*(Traceback \(most recent call last\)|File \"<stdin>\").*$", re.M)


class SourceLeak(MgptError):
    """Text of the document being written (the benchmark's reference) was about to reach a prompt."""


def api_names(rst: str) -> list[str]:
    """The ``:func:``, ``:class:`` and ``:meth:`` targets of ``rst``, in order, each once
    (``:func:`~functools.cmp_to_key``` -> ``functools.cmp_to_key``, ``list.sort()`` -> ``list.sort``)."""
    names = []
    for _, inner in _API_ROLE.findall(rst):
        target = inner[inner.index("<") + 1: -1] if "<" in inner and inner.endswith(">") else inner
        target = target.strip().lstrip("!~").removesuffix("()")
        if target and re.fullmatch(r"[\w.]+", target):
            names.append(target)
    return list(dict.fromkeys(names))


def markdown_code(markdown: str) -> str:
    """The code of a Markdown text: its fenced blocks and inline code spans, joined."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", markdown, re.S)
    rest = re.sub(r"```[^\n]*\n.*?```", " ", markdown, flags=re.S)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", rest))


def api_coverage(names: Iterable[str], markdown: str) -> tuple[int, int]:
    """(names covered, names) for a Markdown text. A name is covered when the text writes it
    out in full (``functools.cmp_to_key``), or when its code (fenced blocks and inline code)
    uses its last part as an identifier (``cmp_to_key``, ``.sort(``)."""
    names = list(dict.fromkeys(names))
    code_words = set(re.findall(r"[A-Za-z_]\w*", markdown_code(markdown)))
    covered = 0
    for name in names:
        full = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", markdown) is not None
        if full or name.rsplit(".", 1)[-1] in code_words:
            covered += 1
    return covered, len(names)


def _words(text: str) -> list[str]:
    return _WORD.findall(_BOILERPLATE.sub(" ", text).lower())


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class LeakGuard:
    """The word n-grams of a text that must not reach a prompt (a HOWTO being written)."""

    def __init__(self, text: str, *, name: str = "the reference", n: int = SHINGLE_WORDS):
        self.name = name
        self.n = n
        self.shingles = _shingles(rst_to_text(text), n)

    def leak(self, text: str) -> str | None:
        """The first ``n`` words of ``text`` that the guarded text also has, or None."""
        words = _words(text)
        for i in range(len(words) - self.n + 1):
            if tuple(words[i:i + self.n]) in self.shingles:
                return " ".join(words[i:i + self.n])
        return None

    def check(self, text: str, where: str = "a prompt") -> None:
        """Raise :class:`SourceLeak` when ``text`` quotes the guarded text."""
        found = self.leak(text)
        if found is not None:
            raise SourceLeak(f"{where} quotes {self.name} (\"{found}\"): its text must not reach a prompt; "
                             "remove the page that quotes it from the sources")

    def quoting(self, pages: Iterable[Page]) -> list[str]:
        """The ids of the pages that quote the guarded text."""
        return [p.id for p in pages if self.leak(p.plain) is not None]


@dataclass
class Howto:
    """A HOWTO as a writing task."""

    #: its page id (``howto/sorting``)
    id: str
    title: str
    #: its reStructuredText source
    text: str
    #: the API names it covers, in order
    apis: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``sorting`` for ``howto/sorting``."""
        return self.id.rsplit("/", 1)[-1]

    @property
    def brief(self) -> str:
        """What the writers are asked: the HOWTO's title."""
        return f"a HOWTO: {self.title}"

    @property
    def plain(self) -> str:
        return rst_to_text(self.text)

    def guard(self) -> LeakGuard:
        return LeakGuard(self.text, name=f"the HOWTO {self.id}")

    def sources(self, corpus: Corpus) -> tuple[Corpus, list[str]]:
        """``corpus`` without this HOWTO and without the pages quoting it; and their ids."""
        removed = [self.id] if self.id in corpus else []
        removed += [pid for pid in self.guard().quoting(corpus.pages.values()) if pid != self.id]
        return corpus.without(removed), removed


def howtos(corpus: Corpus) -> list[Howto]:
    """The HOWTOs of a documentation corpus (the pages under ``howto/``), by id."""
    out = []
    for page in sorted(corpus.pages.values(), key=lambda p: p.id):
        if page.id.startswith("howto/") and page.id not in _NOT_TASKS:
            out.append(Howto(page.id, page.title, page.text, api_names(page.text)))
    return out


# -- the HOWTO task's source retrieval ------------------------------------------------------


def _sections(rst: str) -> list[tuple[str, str]]:
    """(heading, body) of each section of a page (text before the first heading left out)."""
    lines = rst.splitlines()
    out: list[tuple[str, list[str]]] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not line[0].isspace() and re.fullmatch(r"([=\-*^~#\"])\1{2,}\s*", nxt):
            out.append((rst_to_text(line).strip(), []))
        elif out:
            out[-1][1].append(line)
    return [(h, "\n".join(body)) for h, body in out]


def retrieval_pairs(howto: Howto, passages: Iterable[Passage]) -> list[tuple[str, Passage]]:
    """(query, relevant passage) pairs of one HOWTO: for each of its sections, the query
    ``"<title>: <heading>"`` and each library passage that documents an API name the section
    uses (matched by qualified name, ``sorted`` or ``functools.cmp_to_key``)."""
    by_api: dict[str, Passage] = {}
    for p in passages:
        if p.api:  # an object's own passage comes before the rest of its class's body
            by_api.setdefault(p.api, p)
    pairs = []
    for heading, body in _sections(howto.text):
        for name in api_names(body):
            passage = by_api.get(name)
            if passage is not None:
                pairs.append((f"{howto.title}: {heading}", passage))
    return pairs
