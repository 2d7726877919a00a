"""A documentation folder as a corpus: pages, and the passages a researcher retrieves.

Debian's ``python3.11-doc`` ships the reStructuredText sources of docs.python.org under
:data:`DEBIAN_SOURCES` (``library/`` is the library reference, ``howto/`` the HOWTOs). It is
read where it is installed, at run time; nothing of it is copied into mgpt. Any folder of
``.rst.txt``, ``.rst``, ``.md`` or ``.txt`` files is a corpus too.

A page's id is its path under the root without the suffix (``library/functools``). A page is
split into :class:`Passage` s: one per documented API object (``.. function:: sorted(...)``
and its body, named ``sorted``; methods get their class: ``list.sort``), and the prose
between them in pieces of about :data:`PASSAGE_CHARS` characters under their heading. A
passage's text is plain text (:func:`~.rst.rst_to_text`): what a writer reads and quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from pydantic import BaseModel

from mgpt.agents.errors import MgptError
from mgpt.domains.pydocs.rst import API_DIRECTIVES, is_underline, rst_to_text

__all__ = ["DEBIAN_SOURCES", "INSTALL_HINT", "Corpus", "CorpusError", "Page", "Passage", "load_corpus",
           "split_page"]

#: Where Debian's python3.11-doc puts the documentation's sources.
DEBIAN_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
INSTALL_HINT = ("install Debian's python3.11-doc (apt-get install python3.11-doc), or pass --sources DIR "
                "(a folder of .rst.txt, .rst, .md or .txt files)")
SUFFIXES = (".rst.txt", ".rst", ".md", ".txt")
#: About how long a prose passage is (an API object's passage is cut at twice that).
PASSAGE_CHARS = 900


class CorpusError(MgptError):
    """The sources cannot be read: a missing folder, or one with no documents."""


class Passage(BaseModel):
    """A piece of a page a researcher can retrieve and a writer can quote."""

    #: the page's id (``library/functools``)
    page: str
    #: the page's title
    title: str
    #: the heading it sits under, or the API object it documents
    heading: str
    text: str
    #: the qualified name of the API object it documents (``functools.cmp_to_key``), if any
    api: str = ""

    def label(self) -> str:
        """How a citation names it: ``library/functools, cmp_to_key()``."""
        return f"{self.page}, {self.heading}" if self.heading and self.heading != self.title else self.page


@dataclass
class Page:
    """One document of the corpus, as its source text."""

    id: str
    title: str
    text: str
    _plain: str | None = field(default=None, repr=False)

    @property
    def plain(self) -> str:
        """The page as plain text (markup removed)."""
        if self._plain is None:
            self._plain = rst_to_text(self.text)
        return self._plain


def _page_id(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    for suffix in SUFFIXES:
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def _title(text: str, fallback: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        nxt = lines[i + 1]
        if is_underline(line) and nxt.strip() and i + 2 < len(lines) and is_underline(lines[i + 2]):
            return rst_to_text(nxt.strip()).strip()  # a title between an overline and an underline
        if line.strip() and not is_underline(line) and is_underline(nxt) and not line.startswith((" ", "..")):
            return rst_to_text(line).strip()
        if line.startswith("# "):  # Markdown
            return line[2:].strip()
    return fallback


def load_corpus(root: str | Path, *, under: Sequence[str] = ()) -> "Corpus":
    """The documents under ``root`` (only those under the sub-folders ``under``, if given).

    :class:`CorpusError` when ``root`` is not a folder or holds no documents, saying how to
    get the Python documentation.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise CorpusError(f"the sources folder {base} does not exist: {INSTALL_HINT}")
    pages = []
    for path in sorted(p for p in base.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)):
        page_id = _page_id(path, base)
        if under and not any(page_id == u or page_id.startswith(u.rstrip("/") + "/") for u in under):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
        pages.append(Page(page_id, _title(text, page_id), text))
    if not pages:
        where = f" under {', '.join(under)}" if under else ""
        raise CorpusError(f"no documents{where} in {base} (looked for {', '.join(SUFFIXES)}): {INSTALL_HINT}")
    return Corpus(pages)


class Corpus:
    """Pages by id, and their passages (split once, on first use)."""

    def __init__(self, pages: Iterable[Page]):
        self.pages = {p.id: p for p in pages}
        self._passages: list[Passage] | None = None

    def __len__(self) -> int:
        return len(self.pages)

    def __contains__(self, page_id: object) -> bool:
        return page_id in self.pages

    def without(self, page_ids: Iterable[str]) -> "Corpus":
        """The corpus less the pages named (a HOWTO, and the pages quoting it)."""
        drop = set(page_ids)
        kept = Corpus(p for p in self.pages.values() if p.id not in drop)
        if self._passages is not None:  # already split: keep the split
            kept._passages = [p for p in self._passages if p.page not in drop]
        return kept

    def passages(self) -> list[Passage]:
        if self._passages is None:
            self._passages = [p for page in self.pages.values() for p in split_page(page)]
        return self._passages


# -- splitting a page ------------------------------------------------------------------------

_API = re.compile(r"^(\s*)\.\.\s+(?:py:)?(" + "|".join(API_DIRECTIVES) + r")::\s*(.+?)\s*$")
_MODULE = re.compile(r"^\.\.\s+(?:py:)?(?:module|currentmodule)::\s*(\S+)")


@dataclass
class _Block:
    lines: list[str]
    heading: str
    #: the API object the block documents (or, for the rest of a class's body, its class)
    api: str = ""
    #: the directive's indent: the block ends at a line indented no deeper (-1: prose)
    indent: int = -1
    #: the block starts with the object's directive (not the rest of a class's body)
    entry: bool = False


def _api_name(signature: str, module: str, owner: str) -> str:
    """``sort(*, key=None)`` in class ``list`` -> ``list.sort``; ``Logger.setLevel`` in class
    ``logging.Logger`` -> ``logging.Logger.setLevel``; a function of a module gets the module
    (``functools.cmp_to_key``); builtins stay bare (``sorted``)."""
    name = re.split(r"[\s(\[]", signature.strip(), maxsplit=1)[0].strip()
    if owner:
        head, _, rest = name.partition(".")
        if not rest:
            return f"{owner}.{name}"
        if head == owner.rsplit(".", 1)[-1]:
            return f"{owner}.{rest}"
        return name
    if module and module != "builtins" and not name.startswith(module + ".") and "." not in name:
        return f"{module}.{name}"
    return name


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _blocks(text: str) -> list[_Block]:
    """The page's lines grouped into API-object blocks and prose blocks, with headings."""
    lines = text.splitlines()
    module, heading = "", ""
    owners: list[tuple[int, str]] = []  # (indent, qualified name) of the enclosing classes
    blocks: list[_Block] = [_Block([], heading)]
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not line[0].isspace() and is_underline(nxt) and not is_underline(line):
            heading, owners = rst_to_text(line).strip(), []
            blocks.append(_Block([], heading))
            continue
        m = _MODULE.match(line)
        if m:
            module = m.group(1)
        api = _API.match(line)
        if api:
            indent = len(api.group(1))
            owners = [(d, o) for d, o in owners if d < indent]
            name = _api_name(api.group(3), module, owners[-1][1] if owners else "")
            if api.group(2) == "class":
                owners.append((indent, name))
            blocks.append(_Block([line], heading, name, indent, entry=True))
            continue
        current = blocks[-1]
        if line.strip() and current.indent >= 0 and _indent(line) <= current.indent:
            owners = [(d, o) for d, o in owners if d < _indent(line)]
            d, owner = owners[-1] if owners else (-1, "")
            blocks.append(_Block([], heading, owner, d))  # the rest of a class's body, or prose
        blocks[-1].lines.append(line)
    return blocks


def _pieces(text: str, size: int) -> list[str]:
    """Paragraphs packed into pieces of about ``size`` characters."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        if not para.strip():
            continue
        if out and len(out[-1]) + len(para) < size:
            out[-1] += "\n\n" + para
        else:
            out.append(para)
    return out


def split_page(page: Page) -> list[Passage]:
    """The passages of ``page``: one per API object, and its prose in pieces."""
    out: list[Passage] = []
    for block in _blocks(page.text):
        text = rst_to_text("\n".join(block.lines)).strip()
        if len(text) < 40:
            continue
        if block.entry:
            label = block.api.rsplit(".", 1)[-1] if "." in block.api else block.api
            out.append(Passage(page=page.id, title=page.title, heading=label, text=text[: 2 * PASSAGE_CHARS],
                               api=block.api))
            continue
        for piece in _pieces(text, PASSAGE_CHARS):
            if len(piece.strip()) >= 40:
                out.append(Passage(page=page.id, title=page.title, heading=block.api or block.heading or page.title,
                                   text=piece.strip(), api=block.api))
    return out
